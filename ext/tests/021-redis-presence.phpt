--TEST--
chat_is_online(), chat_online_count(), chat_user_devices(), chat_kick() against presence a node registered
--FILE--
<?php
declare(strict_types=1);
require __DIR__ . '/inc/bootstrap.inc';

$redis = use_test_redis();
$ns = ini_get('chat.namespace');

echo "-- nobody connected\n";
var_dump(chat_is_online('bob'), chat_online_count(), chat_user_devices('bob'), chat_kick('bob', 'bye'));

echo "-- bob on two devices, alice on one, carol's connection already expired (node crashed)\n";
register_presence($redis, 'bob', 'c1', 'phone', 60_000);
register_presence($redis, 'bob', 'c2', 'web', 60_000);
register_presence($redis, 'alice', 'c3', 'web', 60_000);
register_presence($redis, 'carol', 'c4', 'web', -1_000);
var_dump(chat_is_online('bob'), chat_is_online('alice'), chat_is_online('carol'), chat_is_online('dave'));
var_dump(chat_online_count());
$devices = chat_user_devices('bob');
usort($devices, fn ($a, $b) => strcmp($a['id'], $b['id']));
echo json_encode($devices, JSON_PRETTY_PRINT), "\n";
var_dump(chat_user_devices('carol'));

echo "-- ids are case-sensitive\n";
var_dump(chat_is_online('Bob'));

echo "-- chat_kick tells the nodes on bob's live channel, and counts his connections\n";
$listener = new RawRedis(test_redis_url());
$listener->command('SUBSCRIBE', "$ns:{u:bob}:live");
var_dump(chat_kick('bob', 'logged out'));
[$kind, , $payload] = $listener->read();
echo $kind, ' ', $payload, "\n";
var_dump(chat_kick('bob'));
[, , $payload] = $listener->read();
var_dump($payload);
echo "-- nobody to kick: nothing is published (the next thing on carol's channel is a message)\n";
$listener->command('SUBSCRIBE', "$ns:{u:carol}:live");
var_dump(chat_kick('carol', 'x'));
chat_push('carol', 'after');
[, $channel, $payload] = $listener->read();
echo substr($channel, strlen($ns)), ' ', substr($payload, 0, 3), "\n";
?>
--EXPECT--
-- nobody connected
bool(false)
int(0)
array(0) {
}
int(0)
-- bob on two devices, alice on one, carol's connection already expired (node crashed)
bool(true)
bool(true)
bool(false)
bool(false)
int(2)
[
    {
        "id": "c1",
        "node": "node-1",
        "device": "phone",
        "transport": "websocket",
        "connected_at": 1732230000123
    },
    {
        "id": "c2",
        "node": "node-1",
        "device": "web",
        "transport": "websocket",
        "connected_at": 1732230000123
    }
]
array(0) {
}
-- ids are case-sensitive
bool(false)
-- chat_kick tells the nodes on bob's live channel, and counts his connections
int(2)
message klogged out
int(2)
string(1) "k"
-- nobody to kick: nothing is published (the next thing on carol's channel is a message)
int(0)
:{u:carol}:live m1 
