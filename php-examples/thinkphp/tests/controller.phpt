--TEST--
ThinkPHP example: app\controller\Chat's actions (token, send with chat_push(), webhook) and the demo login, against a live Redis
--INI--
chat.jwt_secret=tp-secret
--FILE--
<?php
declare(strict_types=1);
require __DIR__ . '/inc/bootstrap.inc';
// ThinkPHP cannot be installed here: think-shim.inc stands in for think\Request, think\Session,
// think\App and json(), the framework pieces the controllers touch.
require __DIR__ . '/inc/think-shim.inc';

use app\common\ChatManager;
use app\controller\Chat;
use app\controller\Demo;
use think\App;
use think\Request;
use think\Session;

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

/** A POST /chat/send as demo.html makes it: JSON, which ThinkPHP decodes into post(). */
function send(array $session, mixed $to, mixed $text, string $type = 'application/json; charset=utf-8'): Request
{
    return new Request(session: $session, post: ['to' => $to, 'text' => $text], headers: ['content-type' => $type]);
}

echo "-- GET /chat/token\n";
reply($controller->token(new Request()));
$r = $controller->token(new Request(session: ['user_id' => 42]));
echo $r->getCode(), ' ', implode(',', array_keys($r->getData())), ' ', json_encode(str_starts_with($r->getData()['url'], 'wss://chat.example/ws?token=')), "\n";
ini_set('chat.jwt_secret', '');
reply($controller->token(new Request(session: ['user_id' => 42])));
ini_set('chat.jwt_secret', 'tp-secret');

echo "-- POST /chat/send\n";
reply($controller->send(send([], 'bob', 'hi')));
$r = $controller->send(send(['user_id' => 42], 'bob', '你好, Bob'));
echo $r->getCode(), ' ', json_encode(preg_match('/^[0-9A-Z]{26}$/', $r->getData()['id'] ?? '') === 1), "\n";
$r = $controller->send(send(['user_id' => 'bob'], 42, 'a number is a user id too'));
echo $r->getCode(), ' ', json_encode(isset($r->getData()['id'])), "\n";
foreach (['bob', '42'] as $uid) {
    foreach ($redis->envelopes("$ns:{u:$uid}:stream") as $e) {
        echo "  in $uid's inbox: from {$e['from']} to {$e['to']} ", json_encode($e['data'], JSON_UNESCAPED_UNICODE), "\n";
    }
}
echo "a form post, which another site's page can make a browser send: refused\n";
reply($controller->send(send(['user_id' => 42], 'bob', 'hi', 'application/x-www-form-urlencoded')));
reply($controller->send(send(['user_id' => 42], 'bob', 'hi', 'text/plain')));
reply($controller->send(send(['user_id' => 42], 'bob smith', 'hi')));
reply($controller->send(send(['user_id' => 42], 'bob', '  ')));
reply($controller->send(send(['user_id' => 42], 'bob', "\xff")));
reply($controller->send(send(['user_id' => 42], 'bob', str_repeat('长', 2001))));
reply($controller->send(send(['user_id' => 42], ['bob'], 'hi')));
reply($controller->send(send(['user_id' => 42], 'bob', null)));
ini_set('chat.redis_url', dead_redis_url());
reply($controller->send(send(['user_id' => 42], 'bob', 'hi')));

echo "-- POST /chat/webhook\n";
// The shape chat-sidecar sends (sidecar/src/webhook.rs).
$body = '{"event":"message.offline","delivery":"01JD8X0000000000000000DLVR","user":"bob","count":1,"messages":[{"type":"message","id":"01JD8X0000000000000000MSG1","conv":"u:bob","seq":3,"from":"alice","to":"bob","ts":1732230000123,"data":{"text":"hi"}}]}';
$signed = fn (string $b, ?int $t = null) => ['x-chat-signature' => \Chat\Webhook::sign($b, 'hook-secret', $t)];
reply($controller->webhook(new Request(headers: $signed($body), content: $body)));
reply($controller->webhook(new Request(headers: ['x-chat-signature' => 't=' . time() . ',v1=' . str_repeat('0', 64)], content: $body)));
reply($controller->webhook(new Request(headers: $signed($body, time() - 3600), content: $body)));
reply($controller->webhook(new Request(content: $body)));
reply($controller->webhook(new Request(headers: $signed('not json'), content: 'not json')));
$unconfigured = new Chat(ChatManager::fromConfig([]));
reply($unconfigured->webhook(new Request(headers: $signed($body), content: $body)));

echo "-- GET /demo/login (the skeleton's login stand-in)\n";
$session = new Session();
reply((new Demo())->login(new Request(get: ['user' => 'alice']), new App(debug: true), $session));
echo json_encode($session->all()), ' regenerated ', $session->regenerated, "\n";
reply((new Demo())->login(new Request(get: ['user' => 'bob smith']), new App(debug: true), new Session()));
reply((new Demo())->login(new Request(), new App(debug: true), new Session()));
$session = new Session();
reply((new Demo())->login(new Request(get: ['user' => 'alice']), new App(debug: false), $session));
echo json_encode($session->all()), "\n";
?>
--EXPECT--
-- GET /chat/token
401 {"error":"log in first"}
200 token,url,expires_in true
503 {"error":"chat is not available"}
-- POST /chat/send
401 {"error":"log in first"}
200 true
200 true
  in bob's inbox: from 42 to bob {"type":"text","text":"你好, Bob"}
  in bob's inbox: from bob to 42 {"type":"text","text":"a number is a user id too"}
  in 42's inbox: from 42 to bob {"type":"text","text":"你好, Bob"}
  in 42's inbox: from bob to 42 {"type":"text","text":"a number is a user id too"}
a form post, which another site's page can make a browser send: refused
415 {"error":"send a JSON body (Content-Type: application/json)"}
415 {"error":"send a JSON body (Content-Type: application/json)"}
422 {"error":"user id contains ' '; allowed are ASCII letters, digits and _ - . @ +"}
422 {"error":"expected to and text (1 to 2000 characters)"}
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
503 {"error":"webhooks are not configured (CHAT_WEBHOOK_SECRET)"}
-- GET /demo/login (the skeleton's login stand-in)
200 {"user_id":"alice"}
{"user_id":"alice"} regenerated 1
422 {"error":"expected ?user= a user id: letters, digits, _ - . @ +"}
422 {"error":"expected ?user= a user id: letters, digits, _ - . @ +"}
404 {"error":"not found"}
[]
