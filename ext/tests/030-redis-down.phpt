--TEST--
Redis down or frozen: every function throws Chat\ConnectionException naming the URL; never a fatal or false
--INI--
chat.jwt_secret=phpt-secret
chat.timeout_ms=300
--FILE--
<?php
declare(strict_types=1);
require __DIR__ . '/inc/bootstrap.inc';

$calls = [
    'chat_push' => fn () => chat_push('bob', 'hi'),
    'chat_is_online' => fn () => chat_is_online('bob'),
    'chat_online_count' => fn () => chat_online_count(),
    'chat_user_devices' => fn () => chat_user_devices('bob'),
    'chat_kick' => fn () => chat_kick('bob'),
];

echo "-- nothing listens (connection refused); the password is masked in messages\n";
$dead = dead_redis_url();
ini_set('chat.redis_url', str_replace('redis://', 'redis://app:s3cret@', $dead));
foreach ($calls as $name => $call) {
    echo $name, ': ';
    show($call);
}
echo "chat_token needs no Redis: ";
show(fn () => substr_count(chat_token('bob'), '.'));

echo "-- Redis accepts the connection but never answers (frozen, overloaded): the check that it is the master times out\n";
[$server, $silent] = silent_redis();
ini_set('chat.redis_url', $silent);
foreach ($calls as $name => $call) {
    $start = microtime(true);
    echo $name, ': ';
    show($call);
    // Bounded by chat.timeout_ms (300 ms) per step, not by PHP's max_execution_time.
    $ms = (microtime(true) - $start) * 1000;
    echo $ms >= 250 && $ms < 2000 ? "  took about the timeout\n" : "  took $ms ms\n";
}

echo "-- catchable as the documented parents\n";
try {
    chat_online_count();
} catch (RuntimeException $e) {
    echo get_class($e), ' is a ', implode(', ', array_values(array_filter(
        [Chat\ChatException::class, RuntimeException::class],
        fn ($c) => $e instanceof $c,
    ))), "\n";
}

echo "-- Redis back: the same process works again at once\n";
fclose($server);
$redis = use_test_redis();
show(fn () => strlen(chat_push('bob', 'back')));
show(fn () => chat_online_count());
?>
--EXPECTF--
-- nothing listens (connection refused); the password is masked in messages
chat_push: Chat\ConnectionException: cannot reach Redis at redis://app:***@127.0.0.1:%d (chat.redis_url): Connection refused
chat_is_online: Chat\ConnectionException: cannot reach Redis at redis://app:***@127.0.0.1:%d (chat.redis_url): Connection refused
chat_online_count: Chat\ConnectionException: cannot reach Redis at redis://app:***@127.0.0.1:%d (chat.redis_url): Connection refused
chat_user_devices: Chat\ConnectionException: cannot reach Redis at redis://app:***@127.0.0.1:%d (chat.redis_url): Connection refused
chat_kick: Chat\ConnectionException: cannot reach Redis at redis://app:***@127.0.0.1:%d (chat.redis_url): Connection refused
chat_token needs no Redis: ok: 2
-- Redis accepts the connection but never answers (frozen, overloaded): the check that it is the master times out
chat_push: Chat\ConnectionException: cannot reach Redis at redis://127.0.0.1:%d (chat.redis_url): no answer within 300 ms (chat.timeout_ms)
  took about the timeout
chat_is_online: Chat\ConnectionException: cannot reach Redis at redis://127.0.0.1:%d (chat.redis_url): no answer within 300 ms (chat.timeout_ms)
  took about the timeout
chat_online_count: Chat\ConnectionException: cannot reach Redis at redis://127.0.0.1:%d (chat.redis_url): no answer within 300 ms (chat.timeout_ms)
  took about the timeout
chat_user_devices: Chat\ConnectionException: cannot reach Redis at redis://127.0.0.1:%d (chat.redis_url): no answer within 300 ms (chat.timeout_ms)
  took about the timeout
chat_kick: Chat\ConnectionException: cannot reach Redis at redis://127.0.0.1:%d (chat.redis_url): no answer within 300 ms (chat.timeout_ms)
  took about the timeout
-- catchable as the documented parents
Chat\ConnectionException is a Chat\ChatException, RuntimeException
-- Redis back: the same process works again at once
ok: 26
ok: 0
