--TEST--
Chat\Client, installed with Composer: every method against a live Redis, typed results
--FILE--
<?php
declare(strict_types=1);
require __DIR__ . '/../../../ext/tests/inc/bootstrap.inc';
require_composer_autoload();

use Chat\Client;
use Chat\ClientInterface;
use Chat\Device;

// Found by Composer's PSR-4 autoloader in the installed package.
foreach (Composer\Autoload\ClassLoader::getRegisteredLoaders() as $loader) {
    echo str_replace('vendor/composer/../', 'vendor/', strstr((string) $loader->findFile(Client::class), 'vendor/')), "\n";
}

$redis = use_test_redis();
$ns = ini_get('chat.namespace');
ini_set('chat.jwt_secret', 'client-secret');
$chat = new Client();
var_dump($chat instanceof ClientInterface);

echo "-- push: ints are user ids; from is optional\n";
$id = $chat->push(42, ['text' => 'Your order shipped']);
$chat->push('bob', ['text' => 'hi'], from: 42);
foreach ([42, 'bob'] as $uid) {
    foreach ($redis->envelopes("$ns:{u:$uid}:stream") as $seq => $e) {
        echo "$uid #$seq from ", json_encode($e['from']), ' to ', $e['to'], ' ', json_encode($e['data']), "\n";
    }
}
var_dump($redis->envelopes("$ns:{u:42}:stream")[1]['id'] === $id);

echo "-- token: a JWT for the user\n";
$token = $chat->token(42, 60, ['role' => 'agent']);
[$h, $p, $s] = explode('.', $token);
$claims = json_decode(base64_decode(strtr($p, '-_', '+/')), true);
echo $claims['sub'], ' ', $claims['role'], ' ', $claims['exp'] - $claims['iat'], "\n";
var_dump(hash_equals(rtrim(strtr(base64_encode(hash_hmac('sha256', "$h.$p", 'client-secret', true)), '+/', '-_'), '='), $s));

echo "-- connectUrl: the endpoint with the token as a query parameter\n";
$url = $chat->connectUrl('wss://chat.example/ws', 'bob');
var_dump(str_starts_with($url, 'wss://chat.example/ws?token=eyJ'));
parse_str(parse_url($chat->connectUrl('ws://127.0.0.1:9501/ws?device=phone', 'bob'), PHP_URL_QUERY), $query);
echo implode(',', array_keys($query)), ' ', json_decode(base64_decode(strtr(explode('.', $query['token'])[1], '-_', '+/')), true)['sub'], "\n";
foreach (['/ws', 'ftp://x/ws', 'wss://x/ws#frag', 'chat.example/ws'] as $bad) {
    show(fn () => $chat->connectUrl($bad, 'bob'));
}

echo "-- presence: isOnline, onlineCount, devices as Device objects, kick\n";
var_dump($chat->isOnline('bob'), $chat->onlineCount(), $chat->devices('bob'));
register_presence($redis, 'bob', 'conn-1', 'phone', 60_000, 1732230000123);
var_dump($chat->isOnline('bob'), $chat->onlineCount());
$devices = $chat->devices('bob');
var_dump(count($devices), $devices[0] instanceof Device);
echo $devices[0]->id, ' ', $devices[0]->node, ' ', $devices[0]->device, ' ', $devices[0]->transport, ' ', $devices[0]->connectedAt, "\n";
date_default_timezone_set('Asia/Shanghai');
echo $devices[0]->connectedSince()->format('Y-m-d H:i:s.v P'), "\n";
var_dump($chat->kick('bob', 'logged out'));
$before = time();
var_dump($chat->kick('bob', 'banned', revokeTokens: true));
$revokedAt = (int) $redis->command('GET', "$ns:{u:bob}:revoked");
var_dump($revokedAt >= $before && $revokedAt <= time(), $redis->command('TTL', "$ns:{u:bob}:revoked") > 30 * 86400);

echo "-- the extension's exceptions come through unchanged\n";
show(fn () => $chat->push('not valid', 'x'));
show(fn () => $chat->kick('bob', str_repeat('x', 200)));
show(fn () => $chat->devices(''));
ini_set('chat.redis_url', dead_redis_url());
show(fn () => $chat->isOnline('bob'));

echo "-- an app's test double only needs the interface\n";
final class RecordingChat implements ClientInterface
{
    public array $pushed = [];
    public function token(string|int $uid, int $ttl = 3600, array $claims = []): string { return "token-$uid"; }
    public function push(string|int $to, mixed $message, string|int|null $from = null): string { $this->pushed[] = [$to, $message, $from]; return 'id'; }
    public function isOnline(string|int $uid): bool { return false; }
    public function onlineCount(): int { return 0; }
    public function devices(string|int $uid): array { return []; }
    public function kick(string|int $uid, ?string $reason = null, bool $revokeTokens = false): int { return 0; }
    public function connectUrl(string $endpoint, string|int $uid, int $ttl = 3600, array $claims = []): string { return "$endpoint?token=token-$uid"; }
}
function notify_shipped(ClientInterface $chat, int $userId): void
{
    $chat->push($userId, ['text' => 'shipped']);
}
$double = new RecordingChat();
notify_shipped($double, 7);
echo json_encode($double->pushed), "\n";
?>
--EXPECTF--
vendor/chat/chat-php/src/Client.php
bool(true)
-- push: ints are user ids; from is optional
42 #1 from null to 42 {"text":"Your order shipped"}
42 #2 from "42" to bob {"text":"hi"}
bob #1 from "42" to bob {"text":"hi"}
bool(true)
-- token: a JWT for the user
42 agent 60
bool(true)
-- connectUrl: the endpoint with the token as a query parameter
bool(true)
device,token bob
Chat\InvalidArgumentException: endpoint must be an absolute ws://, wss://, http:// or https:// URL without a #fragment, got "/ws"
Chat\InvalidArgumentException: endpoint must be an absolute ws://, wss://, http:// or https:// URL without a #fragment, got "ftp://x/ws"
Chat\InvalidArgumentException: endpoint must be an absolute ws://, wss://, http:// or https:// URL without a #fragment, got "wss://x/ws#frag"
Chat\InvalidArgumentException: endpoint must be an absolute ws://, wss://, http:// or https:// URL without a #fragment, got "chat.example/ws"
-- presence: isOnline, onlineCount, devices as Device objects, kick
bool(false)
int(0)
array(0) {
}
bool(true)
int(1)
int(1)
bool(true)
conn-1 node-1 phone websocket 1732230000123
2024-11-22 07:00:00.123 +08:00
int(1)
int(1)
bool(true)
bool(true)
-- the extension's exceptions come through unchanged
Chat\InvalidArgumentException: user id contains ' '; allowed are ASCII letters, digits and _ - . @ +
Chat\InvalidArgumentException: the kick reason is 200 bytes; a WebSocket close reason holds at most 123
Chat\InvalidArgumentException: user id must not be empty
Chat\ConnectionException: cannot reach Redis at redis://127.0.0.1:%d (chat.redis_url): Connection refused
-- an app's test double only needs the interface
[[7,{"text":"shipped"},null]]
