--TEST--
ThinkPHP example: config/chat.php through app\common\ChatManager (plain PHP, no framework needed)
--INI--
chat.jwt_secret=from-php-ini
variables_order=GPCS
--FILE--
<?php
declare(strict_types=1);
require __DIR__ . '/inc/bootstrap.inc';

use app\common\ChatManager;

echo "-- config/chat.php with nothing in .env: php.ini values stay, app defaults apply\n";
foreach (['REDIS_URL', 'NAMESPACE', 'JWT_SECRET', 'TIMEOUT_MS', 'MAX_MESSAGE_BYTES', 'WEBSOCKET_URL', 'TOKEN_TTL', 'WEBHOOK_SECRET'] as $name) {
    putenv("CHAT_$name");   // whatever the calling shell had
    putenv("PHP_CHAT_$name");
}
$redis = use_test_redis();
$ns = ini_get('chat.namespace');
declare_dataset($redis, "$ns-env");
$config = load_chat_config();
echo json_encode($config, JSON_UNESCAPED_SLASHES), "\n";
$chat = ChatManager::fromConfig($config);
$chat->applySettings();
var_dump(ini_get('chat.jwt_secret'), ini_get('chat.namespace') === $ns);

echo "-- connect info for the browser; none for nobody (a visitor's session has no user_id)\n";
var_dump($chat->connectInfo(null));
$info = $chat->connectInfo(42, ['name' => 'Wang']);
echo implode(',', array_keys($info)), ' ', $info['expires_in'], ' ', json_encode(str_starts_with($info['url'], 'ws://127.0.0.1:9501/ws?token=' . $info['token'])), "\n";
[$h, $p, $s] = explode('.', $info['token']);
$claims = json_decode(base64_decode(strtr($p, '-_', '+/')), true);
echo $claims['sub'], ' ', $claims['name'], ' ', $claims['exp'] - $claims['iat'], "\n";
var_dump(hash_equals(rtrim(strtr(base64_encode(hash_hmac('sha256', "$h.$p", 'from-php-ini', true)), '+/', '-_'), '='), $s));

echo "-- values from the environment (here CHAT_*, read by getenv()) override php.ini for the request\n";
putenv('CHAT_JWT_SECRET=from-env');
putenv("CHAT_NAMESPACE=$ns-env");
putenv('CHAT_WEBSOCKET_URL=wss://chat.example/ws');
putenv('CHAT_WEBHOOK_SECRET=hook-secret');
$chat = ChatManager::fromConfig(load_chat_config());
$chat->applySettings();
var_dump(ini_get('chat.jwt_secret'), ini_get('chat.namespace') === "$ns-env");
echo strstr($chat->connectInfo('bob')['url'], '?', true), "\n";
$chat->client()->push('bob', 'via the manager');
chat_push('bob', 'via plain chat_push()');
var_dump($redis->command('XLEN', "$ns-env:{u:bob}:stream"));

echo "-- webhooks\n";
$body = '{"event":"message.offline","delivery":"01JD8X0000000000000000DLVR","user":"bob","count":0,"messages":[]}';
var_dump($chat->verifyWebhook($body, \Chat\Webhook::sign($body, 'hook-secret')));
var_dump($chat->verifyWebhook($body, \Chat\Webhook::sign($body, 'guess')));
var_dump($chat->verifyWebhook($body, \Chat\Webhook::sign($body, 'hook-secret', time() - 301)));
var_dump($chat->verifyWebhook($body, null));
show(fn () => ChatManager::fromConfig(['webhook_secret' => null])->verifyWebhook($body, 't=1,v1=00'));

echo "-- mistakes in config/chat.php are reported, not ignored\n";
show(fn () => ChatManager::fromConfig(['redis_uri' => 'redis://x', 'token_tll' => 60]));
show(fn () => ChatManager::fromConfig(['token_ttl' => 'an hour']));
show(fn () => ChatManager::fromConfig(['token_ttl' => 0]));
show(fn () => ChatManager::fromConfig(['websocket_url' => 'chat.example/ws'])->connectInfo('bob'));
show(fn () => ChatManager::fromConfig(['timeout_ms' => 1.5])->applySettings());
show(fn () => get_class(ChatManager::fromConfig(['token_ttl' => '600'])));
echo "-- null, as config/chat.php gives for what .env does not set, is the default\n";
show(fn () => ChatManager::fromConfig(['websocket_url' => null, 'token_ttl' => null])->connectInfo('bob')['expires_in']);
show(fn () => strstr(ChatManager::fromConfig(['websocket_url' => null])->connectInfo('bob')['url'], '?', true));
?>
--EXPECTF--
-- config/chat.php with nothing in .env: php.ini values stay, app defaults apply
{"redis_url":null,"namespace":null,"jwt_secret":null,"timeout_ms":null,"max_message_bytes":null,"websocket_url":"ws://127.0.0.1:9501/ws","token_ttl":"3600","webhook_secret":null}
string(12) "from-php-ini"
bool(true)
-- connect info for the browser; none for nobody (a visitor's session has no user_id)
NULL
token,url,expires_in 3600 true
42 Wang 3600
bool(true)
-- values from the environment (here CHAT_*, read by getenv()) override php.ini for the request
string(8) "from-env"
bool(true)
wss://chat.example/ws
int(2)
-- webhooks
bool(true)
bool(false)
bool(false)
bool(false)
Chat\ChatException: config/chat.php: webhook_secret is not set, so webhooks cannot be checked
-- mistakes in config/chat.php are reported, not ignored
Chat\InvalidArgumentException: config/chat.php: unknown key(s) redis_uri, token_tll; known are redis_url, namespace, jwt_secret, timeout_ms, retention, max_message_bytes, websocket_url, token_ttl, webhook_secret
Chat\InvalidArgumentException: config/chat.php: token_ttl must be a whole number of seconds >= 1
Chat\InvalidArgumentException: config/chat.php: token_ttl must be a whole number of seconds >= 1
Chat\InvalidArgumentException: endpoint must be an absolute ws://, wss://, http:// or https:// URL without a #fragment, got "chat.example/ws"
Chat\InvalidArgumentException: chat setting "timeout_ms" must be a string, an int or null, got float
ok: "app\\common\\ChatManager"
-- null, as config/chat.php gives for what .env does not set, is the default
ok: 3600
ok: "ws://127.0.0.1:9501/ws"
