--TEST--
One Redis connection per process, reused across calls; replaced after it broke or its settings changed
--FILE--
<?php
declare(strict_types=1);
require __DIR__ . '/inc/bootstrap.inc';

$redis = use_test_redis();

/** Ids of the extension's connections, as Redis sees them. */
function extension_client_ids(RawRedis $redis): array
{
    preg_match_all('/^id=(\d+) .* name= /m', $redis->command('CLIENT', 'LIST'), $m);
    return $m[1];
}

echo "-- many calls, one connection\n";
for ($i = 0; $i < 50; $i++) {
    chat_push('bob', $i);
    chat_is_online('bob');
    chat_online_count();
}
$ids = extension_client_ids($redis);
var_dump(count($ids));

echo "-- the connection is killed under us (Redis restart, timeout, proxy): one call fails, the next reconnects\n";
$redis->command('CLIENT', 'KILL', 'ID', $ids[0]);
show(fn () => chat_push('bob', 'while broken'));
show(fn () => is_string(chat_push('bob', 'after')));
$now = extension_client_ids($redis);
var_dump(count($now), $now[0] !== $ids[0]);

echo "-- a changed chat.timeout_ms or chat.redis_url opens a new connection and closes the old one\n";
ini_set('chat.timeout_ms', '1500');
chat_online_count();
eventually('the old connection to close', fn () => count(extension_client_ids($redis)) === 1 ? true : null);
$after = extension_client_ids($redis);
var_dump($after[0] !== $now[0]);
ini_set('chat.redis_url', str_replace('127.0.0.1', 'localhost', test_redis_url()));
chat_online_count();
eventually('the old connection to close', fn () => count(extension_client_ids($redis)) === 1 ? true : null);
var_dump(extension_client_ids($redis)[0] !== $after[0]);

echo "-- a Redis error reply does not cost the connection\n";
$before = extension_client_ids($redis);
$redis->command('SET', ini_get('chat.namespace') . ':{u:erin}:seq', 'not a number');
show(fn () => chat_push('erin', 'x'));
var_dump(extension_client_ids($redis) === $before);
?>
--EXPECTF--
-- many calls, one connection
int(1)
-- the connection is killed under us (Redis restart, timeout, proxy): one call fails, the next reconnects
Chat\ConnectionException: lost the connection to Redis at redis://127.0.0.1:%d (chat.redis_url) during chat_push: %s; it may still have been carried out
ok: true
int(1)
bool(true)
-- a changed chat.timeout_ms or chat.redis_url opens a new connection and closes the old one
bool(true)
bool(true)
-- a Redis error reply does not cost the connection
Chat\ChatException: Redis at redis://localhost:%d (chat.redis_url) failed chat_push: %svalue is not an integer or out of range%s
bool(true)
