--TEST--
chat_token(): a valid HS256 JWT; ttl, claims and secret are checked
--INI--
chat.jwt_secret=phpt-secret
--FILE--
<?php
declare(strict_types=1);
require __DIR__ . '/inc/bootstrap.inc';

// Needs no Redis at all.
ini_set('chat.redis_url', dead_redis_url());

function b64url_decode(string $s): string
{
    return base64_decode(strtr($s, '-_', '+/'), true);
}

/** Checks the signature independently of the extension, with PHP's own HMAC. */
function decode_verified(string $token, string $secret): array
{
    [$h, $p, $s] = explode('.', $token);
    $expected = rtrim(strtr(base64_encode(hash_hmac('sha256', "$h.$p", $secret, true)), '+/', '-_'), '=');
    if (!hash_equals($expected, $s)) {
        throw new RuntimeException('bad signature');
    }
    return [json_decode(b64url_decode($h), true), json_decode(b64url_decode($p), true)];
}

$before = time();
$token = chat_token('alice', 600, ['role' => 'agent', 'shop' => 42, 'vip' => true, 'tags' => ['a', 'b'], 'meta' => ['x' => 1.5, 'n' => null]]);
$after = time();
var_dump((bool) preg_match('/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/', $token));
[$header, $claims] = decode_verified($token, 'phpt-secret');
echo json_encode($header), "\n";
var_dump($claims['iat'] >= $before && $claims['iat'] <= $after, $claims['exp'] - $claims['iat']);
unset($claims['iat'], $claims['exp']);
echo json_encode($claims), "\n";
show(fn () => decode_verified($token, 'another-secret'));

echo "-- defaults: one hour, no extra claims\n";
[, $claims] = decode_verified(chat_token('bob'), 'phpt-secret');
var_dump($claims['exp'] - $claims['iat']);
echo implode(',', array_keys($claims)), "\n";

echo "-- ttl\n";
show(fn () => chat_token('bob', 0));
show(fn () => chat_token('bob', -5));
show(fn () => strlen(chat_token('bob', 1)) > 0);
show(fn () => strlen(chat_token('bob', 30 * 86400)) > 0);
show(fn () => chat_token('bob', 30 * 86400 + 1));
show(fn () => chat_token('bob', PHP_INT_MAX));

echo "-- claims\n";
show(fn () => chat_token('bob', 60, ['sub' => 'mallory']));
show(fn () => chat_token('bob', 60, ['exp' => 1]));
show(fn () => chat_token('bob', 60, ['iat' => 1]));
show(fn () => chat_token('bob', 60, ['admin']));
show(fn () => chat_token('bob', 60, ['o' => new stdClass()]));
show(fn () => chat_token('bob', 60, ['f' => INF]));
show(fn () => chat_token('bob', 60, ['s' => "\xff"]));
show(fn () => chat_token('bob', 60, ["\xff" => 1]));
$deep = 'leaf';
for ($i = 0; $i < 40; $i++) {
    $deep = [$deep];
}
show(fn () => chat_token('bob', 60, ['deep' => $deep]));
$self = ['x' => 1];
$self['me'] = &$self;
show(fn () => chat_token('bob', 60, ['loop' => $self]));
// The sidecar accepts tokens of at most 8 KiB: a bigger one is refused here, not in the browser.
show(fn () => chat_token('bob', 60, ['blob' => str_repeat('x', 9000)]));
show(fn () => strlen(chat_token('bob', 60, ['blob' => str_repeat('x', 5000)])) < 8192);

echo "-- the secret\n";
ini_set('chat.jwt_secret', '');
show(fn () => chat_token('bob'));
?>
--EXPECT--
bool(true)
{"alg":"HS256","typ":"JWT"}
bool(true)
int(600)
{"sub":"alice","meta":{"n":null,"x":1.5},"role":"agent","shop":42,"tags":["a","b"],"vip":true}
RuntimeException: bad signature
-- defaults: one hour, no extra claims
int(3600)
sub,exp,iat
-- ttl
Chat\InvalidArgumentException: ttl must be at least 1 second, got 0
Chat\InvalidArgumentException: ttl must be at least 1 second, got -5
ok: true
ok: true
Chat\InvalidArgumentException: ttl is 2592001 seconds; the longest is 2592000 (30 days)
Chat\InvalidArgumentException: ttl is 9223372036854775807 seconds; the longest is 2592000 (30 days)
-- claims
Chat\InvalidArgumentException: claim "sub" is set by chat_token itself and cannot be passed in $claims
Chat\InvalidArgumentException: claim "exp" is set by chat_token itself and cannot be passed in $claims
Chat\InvalidArgumentException: claim "iat" is set by chat_token itself and cannot be passed in $claims
Chat\InvalidArgumentException: claim names must be UTF-8 strings; $claims has the key 0
Chat\InvalidArgumentException: claim 'o' holds a value of type stdClass; claims may only hold strings, numbers, booleans, null and arrays
Chat\InvalidArgumentException: claim 'f' holds inf, which JSON cannot represent
Chat\InvalidArgumentException: claim 's' holds a string that is not valid UTF-8
Chat\InvalidArgumentException: claim names must be UTF-8 strings; $claims has the key '�'
Chat\InvalidArgumentException: claim 'deep' is nested deeper than 32 levels (or refers to itself)
Chat\InvalidArgumentException: claim 'loop' is nested deeper than 32 levels (or refers to itself)
Chat\InvalidArgumentException: the token would be 12157 bytes; the sidecar accepts at most 8192, so put less into $claims
ok: true
-- the secret
Chat\ChatException: the JWT secret is empty; set chat.jwt_secret (PHP) and CHAT_JWT_SECRET (sidecar) to the same value
