--TEST--
Chat\Webhook: HMAC-SHA256 signatures in X-Chat-Signature: sha256=<hex>
--FILE--
<?php
declare(strict_types=1);
require __DIR__ . '/../../../ext/tests/inc/bootstrap.inc';
require_composer_autoload();

use Chat\Webhook;

echo "-- RFC 4231 test case 2 (key \"Jefe\"), independent of this code\n";
echo Webhook::sign('what do ya want for nothing?', 'Jefe'), "\n";

$secret = 'whsec-test';
$body = '{"event":"message.offline","delivery":"01JD8X0000000000000000DLVR","user":"bob","count":0,"messages":[]}';
$header = 'sha256=' . hash_hmac('sha256', $body, $secret);

echo "-- accepted\n";
var_dump(Webhook::verify($body, $header, $secret));
var_dump(Webhook::verify($body, strtoupper($header), $secret));   // hex and scheme in any case
var_dump(Webhook::verify($body, " $header\r\n", $secret));        // stray header whitespace
var_dump(Webhook::verify($body, Webhook::sign($body, $secret), $secret));

echo "-- refused\n";
$cases = [
    'missing header' => [$body, null, $secret],
    'empty header' => [$body, '', $secret],
    'body changed' => [str_replace('bob', 'eve', $body), $header, $secret],
    'body re-encoded' => [json_encode(json_decode($body), JSON_PRETTY_PRINT), $header, $secret],
    'other secret' => [$body, $header, 'whsec-other'],
    'bare hex' => [$body, substr($header, 7), $secret],
    'other algorithm' => [$body, 'sha1=' . hash_hmac('sha1', $body, $secret), $secret],
    'truncated' => [$body, substr($header, 0, -2), $secret],
    'plain sha256' => [$body, 'sha256=' . hash('sha256', $body), $secret],
];
foreach ($cases as $name => [$b, $h, $s]) {
    echo $name, ': ', json_encode(Webhook::verify($b, $h, $s)), "\n";
}

echo "-- an empty secret is a configuration bug, not a verification result\n";
show(fn () => Webhook::verify($body, $header, ''));
show(fn () => Webhook::sign($body, ''));

echo "-- the header as PHP sees it\n";
echo Webhook::HEADER, ' -> $_SERVER[\'', Webhook::SERVER_KEY, "']\n";
?>
--EXPECT--
-- RFC 4231 test case 2 (key "Jefe"), independent of this code
sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843
-- accepted
bool(true)
bool(true)
bool(true)
bool(true)
-- refused
missing header: false
empty header: false
body changed: false
body re-encoded: false
other secret: false
bare hex: false
other algorithm: false
truncated: false
plain sha256: false
-- an empty secret is a configuration bug, not a verification result
Chat\InvalidArgumentException: the webhook secret is empty; configure the secret shared with the sidecar
Chat\InvalidArgumentException: the webhook secret is empty; configure the secret shared with the sidecar
-- the header as PHP sees it
X-Chat-Signature -> $_SERVER['HTTP_X_CHAT_SIGNATURE']
