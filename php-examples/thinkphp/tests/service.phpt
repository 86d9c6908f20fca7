--TEST--
ThinkPHP example: app\service\ChatService registers and applies the settings, app\facade\Chat reaches the manager; a PHP without the extension gets a message that says so
--INI--
chat.jwt_secret=from-php-ini
--FILE--
<?php
declare(strict_types=1);
require __DIR__ . '/inc/bootstrap.inc';
// ThinkPHP cannot be installed here: think-shim.inc stands in for the container (think\App,
// think\Config), think\Service and think\Facade, which the service and the facade extend.
require __DIR__ . '/inc/think-shim.inc';

use app\common\ChatManager;
use app\facade\Chat;
use app\service\ChatService;
use Chat\ClientInterface;
use think\App;
use think\Config;

$redis = use_test_redis();
$ns = ini_get('chat.namespace');
declare_dataset($redis, "$ns-tp");

echo "-- register() and boot(), as ThinkPHP runs every service in app/service.php\n";
$app = new App(new Config(['chat' => ['jwt_secret' => 'from-config', 'namespace' => "$ns-tp", 'websocket_url' => 'wss://chat.example/ws']]));
$service = new ChatService($app);
$service->register();
$service->boot();
var_dump(ini_get('chat.jwt_secret'), ini_get('chat.namespace') === "$ns-tp");
var_dump($app->make(ChatManager::class) === $app->make(ChatManager::class));
echo get_class($app->make(ClientInterface::class)), "\n";
$app->make(ClientInterface::class)->push('bob', 'through the container');
var_dump($redis->command('XLEN', "$ns-tp:{u:bob}:stream"));

echo "-- the facade\n";
$info = Chat::connectInfo('alice');
echo implode(',', array_keys($info)), ' ', json_encode(str_starts_with($info['url'], 'wss://chat.example/ws?token=')), "\n";
var_dump(Chat::connectInfo(null));

echo "-- a mistake in config/chat.php stops boot with a message naming it\n";
$service = new ChatService(new App(new Config(['chat' => ['jwt_sercet' => 'x']])));
$service->register();
show(fn () => $service->boot());

echo "-- php think, composer's scripts: a CLI PHP without the extension\n";
$script = tempnam(sys_get_temp_dir(), 'chat-tp-');
file_put_contents($script, sprintf(<<<'PHP'
    <?php
    require %s;
    require %s;
    try {
        $service = new app\service\ChatService(new think\App(new think\Config(['chat' => []])));
        $service->register();
        $service->boot();
    } catch (Throwable $e) {
        echo get_class($e), ': ', $e->getMessage(), "\n";
    }
    PHP, var_export(__DIR__ . '/inc/bootstrap.inc', true), var_export(__DIR__ . '/inc/think-shim.inc', true)));
// -n: no php.ini, so no installed chat.so either.
exec(escapeshellarg(PHP_BINARY) . ' -n ' . escapeshellarg($script) . ' 2>&1', $out);
unlink($script);
echo implode("\n", $out), "\n";
?>
--EXPECTF--
-- register() and boot(), as ThinkPHP runs every service in app/service.php
string(11) "from-config"
bool(true)
bool(true)
Chat\Client
int(1)
-- the facade
token,url,expires_in true
NULL
-- a mistake in config/chat.php stops boot with a message naming it
Chat\InvalidArgumentException: config/chat.php: unknown key(s) jwt_sercet; known are redis_url, namespace, jwt_secret, timeout_ms, retention, max_message_bytes, websocket_url, token_ttl, webhook_secret
-- php think, composer's scripts: a CLI PHP without the extension
RuntimeException: the chat extension is not loaded in this PHP (cli SAPI, no php.ini; php --ri chat). php think and composer's scripts need it as much as php-fpm: see php-examples/thinkphp/README.md, "Prerequisites"
