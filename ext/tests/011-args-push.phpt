--TEST--
chat_push(): options, message encoding and the size limit are checked before Redis is contacted
--INI--
chat.max_message_bytes=64
--FILE--
<?php
declare(strict_types=1);
require __DIR__ . '/inc/bootstrap.inc';

// Nothing listens there: every refusal below happens before any connection attempt.
ini_set('chat.redis_url', dead_redis_url());

echo "-- options\n";
show(fn () => chat_push('bob', 'hi', ['form' => 'alice']));
show(fn () => chat_push('bob', 'hi', [0 => 'alice']));
show(fn () => chat_push('bob', 'hi', ['from' => 'alice', 'to' => 'carol']));
show(fn () => chat_push('bob', 'hi', ['from' => 'not valid']));
show(fn () => chat_push('bob', 'hi', ['from' => 1.5]));
show(fn () => chat_push('bob', 'hi', ['from' => true]));

echo "-- messages json_encode() refuses\n";
show(fn () => chat_push('bob', "\xB1\x31"));
show(fn () => chat_push('bob', ['n' => INF]));
show(fn () => chat_push('bob', NAN));
$loop = new stdClass();
$loop->self = $loop;
show(fn () => chat_push('bob', $loop));
$h = fopen('php://memory', 'r');
show(fn () => chat_push('bob', ['file' => $h]));

echo "-- jsonSerialize() exceptions reach the caller unchanged\n";
final class Broken implements JsonSerializable
{
    public function jsonSerialize(): mixed
    {
        throw new DomainException('cannot serialize an order without lines');
    }
}
show(fn () => chat_push('bob', new Broken()));

echo "-- the size limit (chat.max_message_bytes = 64) counts bytes of the JSON\n";
show(fn () => chat_push('bob', str_repeat('a', 63)));   // 65 bytes with the quotes
show(fn () => chat_push('bob', ['text' => str_repeat('é', 40)]));
show(fn () => chat_push('bob', str_repeat('a', 62)));   // exactly 64: accepted, so Redis is next
ini_set('chat.max_message_bytes', '1000000');
show(fn () => chat_push('bob', str_repeat('a', 62)));
?>
--EXPECTF--
-- options
Chat\InvalidArgumentException: unknown chat_push option 'form'; the only option is 'from'
Chat\InvalidArgumentException: unknown chat_push option 0; the only option is 'from'
Chat\InvalidArgumentException: unknown chat_push option 'to'; the only option is 'from'
Chat\InvalidArgumentException: option 'from' contains ' '; allowed are ASCII letters, digits and _ - . @ +
Chat\InvalidArgumentException: option 'from' must be a user id string, got float
Chat\InvalidArgumentException: option 'from' must be a user id string, got bool
-- messages json_encode() refuses
Chat\InvalidArgumentException: the message cannot be encoded as JSON: Malformed UTF-8 characters, possibly incorrectly encoded
Chat\InvalidArgumentException: the message cannot be encoded as JSON: Inf and NaN cannot be JSON encoded
Chat\InvalidArgumentException: the message cannot be encoded as JSON: Inf and NaN cannot be JSON encoded
Chat\InvalidArgumentException: the message cannot be encoded as JSON: Recursion detected
Chat\InvalidArgumentException: the message cannot be encoded as JSON: Type is not supported
-- jsonSerialize() exceptions reach the caller unchanged
DomainException: cannot serialize an order without lines
-- the size limit (chat.max_message_bytes = 64) counts bytes of the JSON
Chat\InvalidArgumentException: the message is 65 bytes as JSON; the limit is 64 (chat.max_message_bytes)
Chat\InvalidArgumentException: the message is 91 bytes as JSON; the limit is 64 (chat.max_message_bytes)
Chat\ConnectionException: cannot reach Redis at redis://127.0.0.1:%d (chat.redis_url): Connection refused
Chat\ConnectionException: cannot reach Redis at redis://127.0.0.1:%d (chat.redis_url): Connection refused
