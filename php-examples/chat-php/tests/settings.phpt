--TEST--
Chat\Settings::apply(): app configuration to chat.* INI settings, typos refused, nulls skipped
--INI--
chat.jwt_secret=from-php-ini
--FILE--
<?php
declare(strict_types=1);
require __DIR__ . '/../../../ext/tests/inc/bootstrap.inc';
require_composer_autoload();

use Chat\Settings;

$redis = new RawRedis(test_redis_url());
$ns = 'settings-' . bin2hex(random_bytes(4));
declare_dataset($redis, $ns);

Settings::apply([
    'redis_url' => test_redis_url(),
    'namespace' => $ns,
    'timeout_ms' => 2000,          // ints are fine
    'jwt_secret' => null,          // null: keep php.ini's
    'max_message_bytes' => '4096',
]);
var_dump(ini_get('chat.namespace') === $ns, ini_get('chat.timeout_ms'), ini_get('chat.jwt_secret'), ini_get('chat.max_message_bytes'));

echo "-- the extension uses them at once\n";
(new Chat\Client())->push('bob', 'configured by the app');
var_dump($redis->command('XLEN', "$ns:{u:bob}:stream"));
show(fn () => chat_push('bob', str_repeat('x', 5000)));

echo "-- unknown keys and odd values are refused, and nothing is set then\n";
show(fn () => Settings::apply(['namespace' => 'other', 'redis_host' => '127.0.0.1']));
show(fn () => Settings::apply(['namespace' => 'other', 'timeout_ms' => 1.5]));
show(fn () => Settings::apply(['namespace' => 'other', 'retention' => true]));
var_dump(ini_get('chat.namespace') === $ns);

echo "-- values are checked by the extension when used, naming the setting\n";
Settings::apply(['timeout_ms' => 'soon']);
show(fn () => chat_online_count());

echo "-- a PHP without the extension: a message saying so, not \"class Chat\\ChatException not found\"\n";
// -n: no php.ini, so no installed chat.so either. (A value fixed with php_admin_value is
// php-fpm's business: php-examples/tests/run.sh tests that part.)
$code = sprintf('require %s; try { Chat\Settings::apply(["redis_url" => "redis://127.0.0.1:1"]); } catch (Throwable $e) { echo get_class($e), ": ", $e->getMessage(); }', var_export(getenv('CHAT_TEST_AUTOLOAD'), true));
echo shell_exec(escapeshellarg(PHP_BINARY) . ' -n -r ' . escapeshellarg($code) . ' 2>&1'), "\n";
?>
--EXPECT--
bool(true)
string(4) "2000"
string(12) "from-php-ini"
string(4) "4096"
-- the extension uses them at once
int(1)
Chat\InvalidArgumentException: the message is 5002 bytes as JSON; the limit is 4096 (chat.max_message_bytes)
-- unknown keys and odd values are refused, and nothing is set then
Chat\InvalidArgumentException: unknown chat setting "redis_host"; known are redis_url, namespace, jwt_secret, timeout_ms, retention, max_message_bytes
Chat\InvalidArgumentException: chat setting "timeout_ms" must be a string, an int or null, got float
Chat\InvalidArgumentException: chat setting "retention" must be a string, an int or null, got bool
bool(true)
-- values are checked by the extension when used, naming the setting
Chat\ChatException: chat.timeout_ms must be a whole number >= 1, got "soon"
-- a PHP without the extension: a message saying so, not "class Chat\ChatException not found"
RuntimeException: the chat extension is not loaded in this PHP (cli SAPI, no php.ini; php --ri chat): enable it where this code runs, the CLI included (see the chat README, "Installing the PHP extension")
