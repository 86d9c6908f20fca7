<?php
// A PHP producer of the one-to-one scenario: calls chat_push() as fast as it can (or at a
// given rate) for a while, round-robin over users <prefix><n>, n = offset, offset+stride, ...
// Each message carries hrtime(true) (CLOCK_MONOTONIC, ns) taken just before the call, so the
// receiving client measures the end-to-end latency from PHP to the WebSocket frame.
// usage: php producer.php <prefix> <users> <offset> <stride> <seconds> <rate per s, 0 = max>
// prints {"calls":N,"ns":elapsed}
[, $prefix, $users, $offset, $stride, $seconds, $rate] = $argv;
$users = (int)$users; $stride = max(1, (int)$stride); $rate = (float)$rate;
$i = (int)$offset % $users;
$start = hrtime(true);
$deadline = $start + (int)((float)$seconds * 1e9);
$gap = $rate > 0 ? (int)(1e9 / $rate) : 0;
$next = $start;
$n = 0;
for (;;) {
    $now = hrtime(true);
    if ($now >= $deadline) break;
    if ($gap > 0) {
        if ($now < $next) { usleep(intdiv($next - $now, 1000)); continue; }
        $next += $gap;
    }
    chat_push($prefix . $i, ['t' => hrtime(true)]);
    $n++;
    $i = ($i + $stride) % $users;
}
echo json_encode(['calls' => $n, 'ns' => hrtime(true) - $start]), "\n";
