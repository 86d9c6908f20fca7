<?php
// Group fan-out: sends <count> messages to <group> back to back with chat_send_to_group(),
// each carrying hrtime(true) (CLOCK_MONOTONIC, ns) taken just before the call.
// usage: php group_send.php <group> <count>      prints {"sent":N,"ns":elapsed}
[, $group, $count] = $argv;
$start = hrtime(true);
for ($i = 0; $i < (int)$count; $i++) {
    chat_send_to_group($group, ['t' => hrtime(true)]);
}
echo json_encode(['sent' => (int)$count, 'ns' => hrtime(true) - $start]), "\n";
