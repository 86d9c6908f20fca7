--TEST--
chat_push() against a live Redis: stored in the inbox stream, announced live, JSON kept byte for byte
--FILE--
<?php
declare(strict_types=1);
require __DIR__ . '/inc/bootstrap.inc';

$redis = use_test_redis();
$ns = ini_get('chat.namespace');

// Play a sidecar node: listen on bob's live channel before pushing.
$listener = new RawRedis(test_redis_url());
$listener->command('SUBSCRIBE', "$ns:{u:bob}:live");

$t0 = (int) (microtime(true) * 1000);
$id1 = chat_push('bob', ['text' => 'Your order shipped', 'order' => 1042]);
$id2 = chat_push('bob', ['text' => 'hi'], ['from' => 'alice']);
$t1 = (int) (microtime(true) * 1000);

echo "-- ids are ULIDs (26 characters of Crockford base32)\n";
var_dump((bool) preg_match('/^[0-9A-HJKMNP-TV-Z]{26}$/', $id1), (bool) preg_match('/^[0-9A-HJKMNP-TV-Z]{26}$/', $id2));

echo "-- bob's inbox holds both, with sequence numbers 1 and 2\n";
$bob = $redis->envelopes("$ns:{u:bob}:stream");
var_dump($redis->command('GET', "$ns:{u:bob}:seq"));
foreach ($bob as $seq => $e) {
    $ts = $e['ts'];
    $e['id'] = '<id>';
    unset($e['ts']);
    echo $seq, ' ', json_encode($e), ' ts-ok=', json_encode($ts >= $t0 - 1000 && $ts <= $t1 + 1000), "\n";
}
var_dump($bob[1]['id'] === $id1, $bob[2]['id'] === $id2);

echo "-- with 'from', alice's own inbox has a copy (her other devices), under her sequence\n";
$alice = $redis->envelopes("$ns:{u:alice}:stream");
foreach ($alice as $seq => $e) {
    echo $seq, ' ', $e['conv'], ' ', $e['from'], '->', $e['to'], ' same id: ', json_encode($e['id'] === $id2), "\n";
}

echo "-- sending to yourself stores one copy\n";
chat_push('carol', 'note to self', ['from' => 'carol']);
var_dump($redis->command('XLEN', "$ns:{u:carol}:stream"));

echo "-- announced on the live channel as m<seq> <envelope>\n";
foreach ([1, 2] as $seq) {
    [$kind, $channel, $payload] = $listener->read();
    [$head, $json] = explode(' ', $payload, 2);
    echo $kind, ' ', $channel === "$ns:{u:bob}:live" ? 'bob' : $channel, ' ', $head, ' ',
        json_encode(json_decode($json, true) == $bob[$seq]), "\n";
}

echo "-- the message is json_encode()d once, with these flags, and spliced verbatim\n";
final class Money implements JsonSerializable
{
    public function __construct(private int $cents) {}
    public function jsonSerialize(): array
    {
        return ['amount' => $this->cents / 100, 'currency' => 'EUR'];
    }
}
$messages = [[], new stdClass(), 1.0, 0.1, 'grüße / 你好 "q"', null, true, 7, [1 => 'a'], new Money(1999), ['url' => 'https://x.example/a/b']];
foreach ($messages as $m) {
    chat_push('dave', $m);
}
foreach ($redis->command('XRANGE', "$ns:{u:dave}:stream", '-', '+') as [, $fields]) {
    // The raw envelope text: its "data" member must be exactly what json_encode produced.
    preg_match('/,"data":(.*)\}$/s', $fields[1], $m);
    echo $m[1], "\n";
}

echo "-- chat.namespace prefixes every key\n";
ini_set('chat.namespace', $ns . '-other');
declare_dataset($redis, $ns . '-other');
chat_push('bob', 'elsewhere');
var_dump($redis->command('XLEN', "$ns-other:{u:bob}:stream"), $redis->command('XLEN', "$ns:{u:bob}:stream"));
?>
--EXPECT--
-- ids are ULIDs (26 characters of Crockford base32)
bool(true)
bool(true)
-- bob's inbox holds both, with sequence numbers 1 and 2
string(1) "2"
1 {"type":"message","id":"<id>","conv":"u:bob","seq":1,"epoch":1,"from":null,"to":"bob","data":{"text":"Your order shipped","order":1042}} ts-ok=true
2 {"type":"message","id":"<id>","conv":"u:bob","seq":2,"epoch":1,"from":"alice","to":"bob","data":{"text":"hi"}} ts-ok=true
bool(true)
bool(true)
-- with 'from', alice's own inbox has a copy (her other devices), under her sequence
1 u:alice alice->bob same id: true
-- sending to yourself stores one copy
int(1)
-- announced on the live channel as m<seq> <envelope>
message bob m1 true
message bob m2 true
-- the message is json_encode()d once, with these flags, and spliced verbatim
[]
{}
1.0
0.1
"grüße / 你好 \"q\""
null
true
7
{"1":"a"}
{"amount":19.99,"currency":"EUR"}
{"url":"https://x.example/a/b"}
-- chat.namespace prefixes every key
int(1)
int(2)
