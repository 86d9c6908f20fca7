<?php
// chat_push() calls per second from ONE PHP process (scenario 4). The first call opens the
// extension's Redis connection and loads the script; the timed loop is the steady state.
// usage: php push_rate.php <uid> <calls>     prints {"calls":N,"ns":elapsed}
[, $uid, $calls] = $argv;
$calls = (int)$calls;
chat_push($uid, ['t' => 1]);
$start = hrtime(true);
for ($i = 0; $i < $calls; $i++) {
    chat_push($uid, ['t' => 1]);
}
echo json_encode(['calls' => $calls, 'ns' => hrtime(true) - $start]), "\n";
