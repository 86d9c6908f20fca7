--TEST--
A pcntl_fork()ed child opens its own Redis connection and never touches its parent's
--SKIPIF--
<?php if (!function_exists('pcntl_fork')) die('skip pcntl not available'); ?>
--FILE--
<?php
declare(strict_types=1);
require __DIR__ . '/inc/bootstrap.inc';

$redis = use_test_redis();
$ns = ini_get('chat.namespace');

function extension_client_ids(RawRedis $redis): array
{
    preg_match_all('/^id=(\d+) .* name= /m', $redis->command('CLIENT', 'LIST'), $m);
    return $m[1];
}

chat_push('bob', 'from the parent, before the fork');
$parentIds = extension_client_ids($redis);
var_dump(count($parentIds));

[$toChild, $toParent] = stream_socket_pair(STREAM_PF_UNIX, STREAM_SOCK_STREAM, STREAM_IPPROTO_IP);
$pid = pcntl_fork();
if ($pid === 0) {
    fclose($toChild);
    try {
        chat_push('bob', 'from the child');
        fwrite($toParent, "pushed\n");
    } catch (Throwable $e) {
        fwrite($toParent, get_class($e) . ': ' . $e->getMessage() . "\n");
    }
    fgets($toParent);   // stay alive (connection open) until the parent has looked
    exit(0);
}
fclose($toParent);
echo 'child: ', fgets($toChild);

// While the child lives: two connections, the parent's unchanged.
$both = extension_client_ids($redis);
var_dump(count($both), in_array($parentIds[0], $both, true));

fwrite($toChild, "exit\n");
pcntl_waitpid($pid, $status);
var_dump(pcntl_wexitstatus($status));

// The child's exit closed its own connection only; the parent goes on with its own.
eventually('the child connection to close', fn () => count(extension_client_ids($redis)) === 1 ? true : null);
chat_push('bob', 'from the parent, after the fork');
var_dump(extension_client_ids($redis) === $parentIds);
foreach ($redis->envelopes("$ns:{u:bob}:stream") as $seq => $e) {
    echo $seq, ' ', $e['data'], "\n";
}
?>
--EXPECT--
int(1)
child: pushed
int(2)
bool(true)
int(0)
bool(true)
1 from the parent, before the fork
2 from the child
3 from the parent, after the fork
