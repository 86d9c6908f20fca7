--TEST--
Values from php.ini (here the phpt --INI-- section) are used, and a bad one fails calls, not PHP startup
--INI--
chat.namespace=from-php-ini
chat.timeout_ms=soon
chat.max_message_bytes=100
--FILE--
<?php
declare(strict_types=1);
require __DIR__ . '/inc/bootstrap.inc';

ini_set('chat.redis_url', test_redis_url());
$redis = new RawRedis(test_redis_url());
$redis->command('DEL', 'from-php-ini:{u:bob}:stream', 'from-php-ini:{u:bob}:seq', 'from-php-ini:{u:bob}:epoch');
declare_dataset($redis, 'from-php-ini');
var_dump(ini_get('chat.namespace'), ini_get('chat.max_message_bytes'));
show(fn () => chat_online_count());

ini_set('chat.timeout_ms', '500');
show(fn () => chat_push('bob', str_repeat('x', 200)));
show(fn () => strlen(chat_push('bob', 'fits')));
var_dump($redis->command('XLEN', 'from-php-ini:{u:bob}:stream'));

ini_restore('chat.timeout_ms');
var_dump(ini_get('chat.timeout_ms'));
show(fn () => chat_online_count());
?>
--EXPECT--
string(12) "from-php-ini"
string(3) "100"
Chat\ChatException: chat.timeout_ms must be a whole number >= 1, got "soon"
Chat\InvalidArgumentException: the message is 202 bytes as JSON; the limit is 100 (chat.max_message_bytes)
ok: 26
int(1)
string(4) "soon"
Chat\ChatException: chat.timeout_ms must be a whole number >= 1, got "soon"
