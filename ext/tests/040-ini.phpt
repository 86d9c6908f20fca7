--TEST--
INI settings: defaults, ini_set() at runtime, ini_restore(), and bad values named in the exception
--FILE--
<?php
declare(strict_types=1);
require __DIR__ . '/inc/bootstrap.inc';

echo "-- defaults (no php.ini)\n";
foreach (ini_get_all('chat') as $name => $entry) {
    printf("%s = %s (%s)\n", $name, var_export($entry['global_value'], true), $entry['access'] === INI_ALL ? 'PHP_INI_ALL' : $entry['access']);
}

echo "-- ini_set() returns the old value and takes effect for the next call\n";
$redis = use_test_redis();
$a = ini_get('chat.namespace');
$b = $a . '-b';
declare_dataset($redis, $b);
chat_push('bob', 1);
var_dump(ini_set('chat.namespace', $b) === $a);
chat_push('bob', 2);
chat_push('bob', 3);
var_dump($redis->command('XLEN', "$a:{u:bob}:stream"), $redis->command('XLEN', "$b:{u:bob}:stream"));

echo "-- ini_restore() goes back to the php.ini value\n";
ini_restore('chat.namespace');
var_dump(ini_get('chat.namespace'));

echo "-- a bad value does not stop PHP; each call that needs it throws Chat\\ChatException naming it\n";
$redis = use_test_redis();
$bad = [
    ['chat.timeout_ms', '0'], ['chat.timeout_ms', '-5'], ['chat.timeout_ms', '1.5'], ['chat.timeout_ms', 'abc'],
    ['chat.retention', '0'], ['chat.max_message_bytes', '64K'],
    ['chat.namespace', ''], ['chat.namespace', 'my app'], ['chat.namespace', 'a:b'],
    ['chat.redis_url', 'not a url'], ['chat.redis_url', 'rediss://127.0.0.1:6379'], ['chat.redis_url', 'http://127.0.0.1'],
];
foreach ($bad as [$name, $value]) {
    $old = ini_get($name);
    var_dump(ini_set($name, $value) !== false);
    show(fn () => chat_push('bob', 'x'));
    ini_set($name, $old);
}

echo "-- settings a call does not use do not affect it\n";
ini_set('chat.retention', '0');
ini_set('chat.max_message_bytes', 'lots');
show(fn () => chat_is_online('bob'));
show(fn () => chat_online_count());
ini_set('chat.jwt_secret', 's');
ini_set('chat.redis_url', 'not a url');
show(fn () => strlen(chat_token('bob')) > 0);
?>
--EXPECT--
-- defaults (no php.ini)
chat.failover_timeout_ms = '5000' (PHP_INI_ALL)
chat.jwt_secret = '' (PHP_INI_ALL)
chat.max_message_bytes = '65536' (PHP_INI_ALL)
chat.namespace = 'chat' (PHP_INI_ALL)
chat.redis_url = 'redis://127.0.0.1:6379' (PHP_INI_ALL)
chat.retention = '10000' (PHP_INI_ALL)
chat.timeout_ms = '1000' (PHP_INI_ALL)
-- ini_set() returns the old value and takes effect for the next call
bool(true)
int(1)
int(2)
-- ini_restore() goes back to the php.ini value
string(4) "chat"
-- a bad value does not stop PHP; each call that needs it throws Chat\ChatException naming it
bool(true)
Chat\ChatException: chat.timeout_ms must be a whole number >= 1, got "0"
bool(true)
Chat\ChatException: chat.timeout_ms must be a whole number >= 1, got "-5"
bool(true)
Chat\ChatException: chat.timeout_ms must be a whole number >= 1, got "1.5"
bool(true)
Chat\ChatException: chat.timeout_ms must be a whole number >= 1, got "abc"
bool(true)
Chat\ChatException: chat.retention must be a whole number >= 1, got "0"
bool(true)
Chat\ChatException: chat.max_message_bytes must be a whole number >= 1, got "64K"
bool(true)
Chat\ChatException: chat.namespace must not be empty
bool(true)
Chat\ChatException: chat.namespace contains ' '; allowed are ASCII letters, digits and _ - . @ +
bool(true)
Chat\ChatException: chat.namespace contains ':'; allowed are ASCII letters, digits and _ - . @ +
bool(true)
Chat\ChatException: chat.redis_url = "not a url" is not a usable Redis URL: expected redis://, redis+unix:// or redis+sentinel://
bool(true)
Chat\ChatException: chat.redis_url = "rediss://127.0.0.1:6379" is not a usable Redis URL: can't connect with TLS, the feature is not enabled - InvalidClientConfig
bool(true)
Chat\ChatException: chat.redis_url = "http://127.0.0.1" is not a usable Redis URL: Redis URL did not parse - InvalidClientConfig
-- settings a call does not use do not affect it
ok: false
ok: 0
ok: true
