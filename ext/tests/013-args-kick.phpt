--TEST--
chat_kick(): the reason must fit a WebSocket close frame (UTF-8, at most 123 bytes)
--FILE--
<?php
declare(strict_types=1);
require __DIR__ . '/inc/bootstrap.inc';

// Nothing listens there: refusals happen before any connection attempt.
ini_set('chat.redis_url', dead_redis_url());

show(fn () => chat_kick('bob', str_repeat('a', 124)));
show(fn () => chat_kick('bob', str_repeat('é', 62)));   // 124 bytes, 62 characters
show(fn () => chat_kick('bob', "bad \xC3\x28 utf-8"));
show(fn () => chat_kick('bob', []));
show(fn () => chat_kick('bob', null, 'yes'));

echo "-- accepted, so Redis is contacted next\n";
foreach ([str_repeat('a', 123), str_repeat('é', 61), '', null] as $reason) {
    try {
        chat_kick('bob', $reason, revoke_tokens: true);
    } catch (Chat\ConnectionException) {
        echo "reached Redis\n";
    }
}
?>
--EXPECT--
Chat\InvalidArgumentException: the kick reason is 124 bytes; a WebSocket close reason holds at most 123
Chat\InvalidArgumentException: the kick reason is 124 bytes; a WebSocket close reason holds at most 123
Chat\InvalidArgumentException: the kick reason must be valid UTF-8
TypeError: Invalid value given for argument `reason`.
TypeError: Invalid value given for argument `revoke_tokens`.
-- accepted, so Redis is contacted next
reached Redis
reached Redis
reached Redis
reached Redis
