--TEST--
User ids are validated by every function before Redis is contacted
--INI--
chat.jwt_secret=phpt-secret
--FILE--
<?php
declare(strict_types=1);
require __DIR__ . '/inc/bootstrap.inc';

// Nothing listens there: a ConnectionException below would mean Redis was contacted first.
ini_set('chat.redis_url', dead_redis_url());

$bad = ['', str_repeat('a', 129), 'a b', 'a:b', '{a}', 'é', "a\0b", "\xff", 'a"b', "a\nb", '-1 OR 1'];
$calls = [
    'chat_token' => fn ($uid) => chat_token($uid),
    'chat_push' => fn ($uid) => chat_push($uid, 'hi'),
    'chat_push from' => fn ($uid) => chat_push('bob', 'hi', ['from' => $uid]),
    'chat_is_online' => fn ($uid) => chat_is_online($uid),
    'chat_user_devices' => fn ($uid) => chat_user_devices($uid),
    'chat_kick' => fn ($uid) => chat_kick($uid),
];
foreach ($bad as $uid) {
    $seen = [];
    foreach ($calls as $call) {
        try {
            $call($uid);
            $seen[] = 'accepted';
        } catch (Throwable $e) {
            $seen[] = get_class($e) . ': ' . $e->getMessage();
        }
    }
    // Every function gives the same answer, except that 'from' names itself.
    $seen = array_unique(array_map(fn ($s) => str_replace("option 'from'", 'user id', $s), $seen));
    echo '"', addcslashes($uid, "\0..\37\"\177..\377"), '" => ', implode(' | ', $seen), "\n";
}

echo "-- accepted ids\n";
foreach (['0', '42', 'user_42', 'a.b-c', 'me@example.com', 'x+tag', 'Alice', str_repeat('z', 128)] as $uid) {
    $payload = json_decode(base64_decode(strtr(explode('.', chat_token($uid))[1], '-_', '+/')), true);
    echo $payload['sub'] === $uid ? 'ok ' : 'WRONG ', strlen($uid), "\n";
}

echo "-- ints are ids, also under strict_types\n";
$payload = json_decode(base64_decode(strtr(explode('.', chat_token(42))[1], '-_', '+/')), true);
var_dump($payload['sub']);
show(fn () => chat_push('bob', 'x', ['from' => 7]));   // reaches Redis: the id was accepted

// ext-php-rs words these itself (no function name, no given type), but they are TypeErrors.
echo "-- other types are TypeErrors, as for any typed parameter\n";
show(fn () => chat_push([], 'x'));
show(fn () => chat_is_online(null));
show(fn () => chat_token(1.5));
show(fn () => chat_push('bob', 'x', ['from' => []]));
show(fn () => chat_push('bob'));
?>
--EXPECTF--
"" => Chat\InvalidArgumentException: user id must not be empty
"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" => Chat\InvalidArgumentException: user id is 129 bytes long; the limit is 128
"a b" => Chat\InvalidArgumentException: user id contains ' '; allowed are ASCII letters, digits and _ - . @ +
"a:b" => Chat\InvalidArgumentException: user id contains ':'; allowed are ASCII letters, digits and _ - . @ +
"{a}" => Chat\InvalidArgumentException: user id contains '{'; allowed are ASCII letters, digits and _ - . @ +
"\303\251" => Chat\InvalidArgumentException: user id contains 'é'; allowed are ASCII letters, digits and _ - . @ +
"a\000b" => Chat\InvalidArgumentException: user id contains '\0'; allowed are ASCII letters, digits and _ - . @ +
"\377" => Chat\InvalidArgumentException: user id contains '�'; allowed are ASCII letters, digits and _ - . @ +
"a\"b" => Chat\InvalidArgumentException: user id contains '"'; allowed are ASCII letters, digits and _ - . @ +
"a\nb" => Chat\InvalidArgumentException: user id contains '\n'; allowed are ASCII letters, digits and _ - . @ +
"-1 OR 1" => Chat\InvalidArgumentException: user id contains ' '; allowed are ASCII letters, digits and _ - . @ +
-- accepted ids
ok 1
ok 2
ok 7
ok 5
ok 14
ok 5
ok 5
ok 128
-- ints are ids, also under strict_types
string(2) "42"
Chat\ConnectionException: cannot reach Redis at redis://127.0.0.1:%d (chat.redis_url): Connection refused
-- other types are TypeErrors, as for any typed parameter
TypeError: Invalid value given for argument `uid`.
TypeError: Invalid value given for argument `uid`.
TypeError: Invalid value given for argument `uid`.
Chat\InvalidArgumentException: option 'from' must be a user id string, got array
ArgumentCountError: chat_push() expects at least 2 arguments, 1 given
