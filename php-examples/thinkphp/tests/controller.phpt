--TEST--
ThinkPHP example: app\controller\Chat's actions (token, send with chat_push(), webhook) against a live Redis
--INI--
chat.jwt_secret=tp-secret
--FILE--
<?php
declare(strict_types=1);
require __DIR__ . '/inc/bootstrap.inc';
require __DIR__ . '/inc/think-shim.inc';

use app\common\ChatManager;
use app\controller\Chat;
use think\Request;

$redis = use_test_redis();
$ns = ini_get('chat.namespace');
// What ThinkPHP's container does for the controller's constructor (see app\service\ChatService).
$manager = ChatManager::fromConfig(['webhook_secret' => 'hook-secret', 'websocket_url' => 'wss://chat.example/ws']);
$manager->applySettings();
$controller = new Chat($manager);

function reply(think\response\Json $r): void
{
    echo $r->getCode(), ' ', json_encode($r->getData(), JSON_UNESCAPED_SLASHES), "\n";
}

echo "-- GET /chat/token\n";
reply($controller->token(new Request()));
$r = $controller->token(new Request(session: ['user_id' => 42]));
echo $r->getCode(), ' ', implode(',', array_keys($r->getData())), ' ', json_encode(str_starts_with($r->getData()['url'], 'wss://chat.example/ws?token=')), "\n";
ini_set('chat.jwt_secret', '');
reply($controller->token(new Request(session: ['user_id' => 42])));
ini_set('chat.jwt_secret', 'tp-secret');

echo "-- POST /chat/send\n";
reply($controller->send(new Request(post: ['to' => 'bob', 'text' => 'hi'])));
$r = $controller->send(new Request(session: ['user_id' => 42], post: ['to' => 'bob', 'text' => '你好, Bob']));
echo $r->getCode(), ' ', json_encode(preg_match('/^[0-9A-Z]{26}$/', $r->getData()['id'] ?? '') === 1), "\n";
foreach (['bob', '42'] as $uid) {
    foreach ($redis->envelopes("$ns:{u:$uid}:stream") as $e) {
        echo "  in $uid's inbox: from {$e['from']} to {$e['to']} ", json_encode($e['data'], JSON_UNESCAPED_UNICODE), "\n";
    }
}
reply($controller->send(new Request(session: ['user_id' => 42], post: ['to' => 'bob smith', 'text' => 'hi'])));
reply($controller->send(new Request(session: ['user_id' => 42], post: ['to' => 'bob', 'text' => '  '])));
reply($controller->send(new Request(session: ['user_id' => 42], post: ['to' => 'bob', 'text' => "\xff"])));
reply($controller->send(new Request(session: ['user_id' => 42], post: ['to' => 'bob', 'text' => str_repeat('长', 2001)])));
reply($controller->send(new Request(session: ['user_id' => 42], post: ['to' => ['bob'], 'text' => 'hi'])));
ini_set('chat.redis_url', dead_redis_url());
reply($controller->send(new Request(session: ['user_id' => 42], post: ['to' => 'bob', 'text' => 'hi'])));

echo "-- POST /chat/webhook\n";
// The shape chat-sidecar sends (sidecar/src/webhook.rs).
$body = '{"event":"message.offline","delivery":"01JD8X0000000000000000DLVR","user":"bob","count":1,"messages":[{"type":"message","id":"01JD8X0000000000000000MSG1","conv":"u:bob","seq":3,"from":"alice","to":"bob","ts":1732230000123,"data":{"text":"hi"}}]}';
$signed = fn (string $b, ?int $t = null) => ['x-chat-signature' => \Chat\Webhook::sign($b, 'hook-secret', $t)];
reply($controller->webhook(new Request(headers: $signed($body), content: $body)));
reply($controller->webhook(new Request(headers: ['x-chat-signature' => 't=' . time() . ',v1=' . str_repeat('0', 64)], content: $body)));
reply($controller->webhook(new Request(headers: $signed($body, time() - 3600), content: $body)));
reply($controller->webhook(new Request(content: $body)));
reply($controller->webhook(new Request(headers: $signed('not json'), content: 'not json')));
?>
--EXPECT--
-- GET /chat/token
401 {"error":"log in first"}
200 token,url,expires_in true
503 {"error":"chat is not available"}
-- POST /chat/send
401 {"error":"log in first"}
200 true
  in bob's inbox: from 42 to bob {"type":"text","text":"你好, Bob"}
  in 42's inbox: from 42 to bob {"type":"text","text":"你好, Bob"}
422 {"error":"user id contains ' '; allowed are ASCII letters, digits and _ - . @ +"}
422 {"error":"expected to and text (1 to 2000 characters)"}
422 {"error":"expected to and text (1 to 2000 characters)"}
422 {"error":"expected to and text (1 to 2000 characters)"}
422 {"error":"expected to and text (1 to 2000 characters)"}
503 {"error":"chat is temporarily unavailable, try again"}
-- POST /chat/webhook
200 {"ok":true,"event":"message.offline","delivery":"01JD8X0000000000000000DLVR"}
401 {"error":"bad signature"}
401 {"error":"bad signature"}
401 {"error":"bad signature"}
400 {"error":"expected a JSON object"}
