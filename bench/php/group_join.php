<?php
// Group fan-out set-up: makes users <prefix>0 .. <prefix><n-1> members of <group>.
// usage: php group_join.php <group> <prefix> <n>      prints {"joined":N,"ns":elapsed}
[, $group, $prefix, $n] = $argv;
$start = hrtime(true);
for ($i = 0; $i < (int)$n; $i++) {
    chat_join_group($prefix . $i, $group);
}
echo json_encode(['joined' => (int)$n, 'ns' => hrtime(true) - $start]), "\n";
