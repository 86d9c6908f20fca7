--TEST--
Chat\Webhook: timestamped HMAC-SHA256 signatures in X-Chat-Signature: t=<unix seconds>,v1=<hex>
--FILE--
<?php
declare(strict_types=1);
require __DIR__ . '/../../../ext/tests/inc/bootstrap.inc';
require_composer_autoload();

use Chat\Webhook;

echo "-- against an independent reference: printf '1763769600.{}' | openssl dgst -sha256 -hmac Jefe\n";
echo Webhook::sign('{}', 'Jefe', 1763769600), "\n";

$secret = 'whsec-test';
$body = '{"event":"message.offline","delivery":"01JD8X0000000000000000DLVR","user":"bob","count":0,"messages":[]}';
$t = 1763769600;
$mac = hash_hmac('sha256', "$t.$body", $secret);
$header = "t=$t,v1=$mac";
var_dump(Webhook::sign($body, $secret, $t) === $header);
var_dump((bool) preg_match('/^t=\d+,v1=[0-9a-f]{64}$/', Webhook::sign($body, $secret)));

echo "-- accepted\n";
$at = fn (int $offset) => Webhook::verify($body, $header, $secret, now: $t + $offset);
var_dump($at(0), $at(300), $at(-300));                                         // within 5 minutes either way
var_dump(Webhook::verify($body, strtoupper($header), $secret, now: $t));       // hex and names in any case
var_dump(Webhook::verify($body, " t=$t , v1=$mac \r\n", $secret, now: $t));    // stray whitespace
var_dump(Webhook::verify($body, "t=$t,v1=" . str_repeat('0', 64) . ",v1=$mac", $secret, now: $t)); // one of several v1
var_dump(Webhook::verify($body, "t=$t,v0=junk,v1=$mac,x=1", $secret, now: $t)); // other schemes ignored
var_dump(Webhook::verify($body, Webhook::sign($body, $secret), $secret));      // now, by default
var_dump(Webhook::verify($body, $header, $secret, tolerance: 3600, now: $t + 3600));

echo "-- refused\n";
$cases = [
    'replayed after 5 minutes' => [$body, $header, $secret, 300, $t + 301],
    'from 5 minutes in the future' => [$body, $header, $secret, 300, $t - 301],
    'replayed, tolerance 0' => [$body, $header, $secret, 0, $t + 1],
    'timestamp moved forward' => [$body, 't=' . ($t + 600) . ",v1=$mac", $secret, 300, $t + 600],
    'missing header' => [$body, null, $secret, 300, $t],
    'empty header' => [$body, '', $secret, 300, $t],
    'no timestamp' => [$body, "v1=$mac", $secret, 300, $t],
    'no signature' => [$body, "t=$t", $secret, 300, $t],
    'two timestamps' => [$body, "t=$t,t=$t,v1=$mac", $secret, 300, $t],
    'signed timestamp' => [$body, "t=+$t,v1=$mac", $secret, 300, $t],
    'old sha256= form' => [$body, 'sha256=' . hash_hmac('sha256', $body, $secret), $secret, 300, $t],
    'body changed' => [str_replace('bob', 'eve', $body), $header, $secret, 300, $t],
    'body re-encoded' => [json_encode(json_decode($body), JSON_PRETTY_PRINT), $header, $secret, 300, $t],
    'other secret' => [$body, $header, 'whsec-other', 300, $t],
    'truncated' => [$body, substr($header, 0, -2), $secret, 300, $t],
    'body without timestamp' => [$body, "t=$t,v1=" . hash_hmac('sha256', $body, $secret), $secret, 300, $t],
];
foreach ($cases as $name => [$b, $h, $s, $tolerance, $now]) {
    echo $name, ': ', json_encode(Webhook::verify($b, $h, $s, $tolerance, $now)), "\n";
}

echo "-- configuration bugs throw, they are not verification results\n";
show(fn () => Webhook::verify($body, $header, ''));
show(fn () => Webhook::sign($body, ''));
show(fn () => Webhook::verify($body, $header, $secret, -1));
show(fn () => Webhook::sign($body, $secret, -5));

echo "-- the header as PHP sees it\n";
echo Webhook::HEADER, ' -> $_SERVER[\'', Webhook::SERVER_KEY, "'], tolerance ", Webhook::DEFAULT_TOLERANCE, " s\n";
?>
--EXPECT--
-- against an independent reference: printf '1763769600.{}' | openssl dgst -sha256 -hmac Jefe
t=1763769600,v1=cef68ab8bbf53844dbf801eb4f58f882785707909bf2692f5a9361e5fe0acded
bool(true)
bool(true)
-- accepted
bool(true)
bool(true)
bool(true)
bool(true)
bool(true)
bool(true)
bool(true)
bool(true)
bool(true)
-- refused
replayed after 5 minutes: false
from 5 minutes in the future: false
replayed, tolerance 0: false
timestamp moved forward: false
missing header: false
empty header: false
no timestamp: false
no signature: false
two timestamps: false
signed timestamp: false
old sha256= form: false
body changed: false
body re-encoded: false
other secret: false
truncated: false
body without timestamp: false
-- configuration bugs throw, they are not verification results
Chat\InvalidArgumentException: the webhook secret is empty; configure the secret shared with the sidecar
Chat\InvalidArgumentException: the webhook secret is empty; configure the secret shared with the sidecar
Chat\InvalidArgumentException: the webhook tolerance must be at least 0 seconds, got -1
Chat\InvalidArgumentException: the webhook timestamp must be a unix time, got -5
-- the header as PHP sees it
X-Chat-Signature -> $_SERVER['HTTP_X_CHAT_SIGNATURE'], tolerance 300 s
