<?php
/**
 * Demo chat page: open ?user=alice and ?user=bob in two tabs.
 *
 * The page mints a connect token with chat_token() and the browser connects to chat-sidecar
 * with it. Sending goes through send.php, i.e. through the PHP app, which calls chat_push():
 * that is the point of the product — the PHP app stays in charge.
 */
declare(strict_types=1);

$users = ['alice', 'bob'];
$me = $_GET['user'] ?? null;
if (!in_array($me, $users, true)) {
    header('Location: ?user=alice');
    exit;
}
$peer = $me === 'alice' ? 'bob' : 'alice';
// A real app takes the user from its own login session; the demo trusts the URL.
$token = chat_token($me, 3600);
$conv = "u:$me";
// History and unread state come straight from PHP; the WebSocket resumes after them.
$history = chat_history($conv, 50);
$unread = chat_unread($me)[$conv] ?? 0;
$lastSeq = $history ? end($history)['seq'] : 0;
$wsUrl = getenv('CHAT_WS_URL') ?: 'ws://127.0.0.1:9501/ws';
$h = static fn (string $s): string => htmlspecialchars($s, ENT_QUOTES);
?>
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Chat demo — <?= $h($me) ?></title>
<style>
  body { font: 15px system-ui, sans-serif; max-width: 640px; margin: 2em auto; color: #222; }
  header { display: flex; justify-content: space-between; align-items: baseline; }
  #state { font-size: 13px; color: #888; }
  #state.live { color: #1a7f37; }
  #unread { font-size: 13px; color: #555; margin: 0 0 6px; }
  .seen { font-size: 11px; color: #1a7f37; margin: 0 6px; align-self: flex-end; }
  #log { border: 1px solid #ddd; border-radius: 8px; height: 360px; overflow-y: auto; padding: 8px; background: #fafafa; }
  .msg { margin: 6px 0; display: flex; }
  .msg span { padding: 6px 10px; border-radius: 12px; background: #e8e8ef; max-width: 75%; }
  .msg.mine { justify-content: flex-end; }
  .msg.mine span { background: #cfe3ff; }
  .meta { font-size: 11px; color: #999; margin: 0 6px; align-self: flex-end; }
  form { display: flex; gap: 8px; margin-top: 10px; }
  input { flex: 1; padding: 8px; font-size: 15px; }
  button { padding: 8px 16px; }
</style>
</head>
<body>
<header>
  <h2>You are <?= $h($me) ?>, chatting with <?= $h($peer) ?></h2>
  <a href="group.php?user=<?= $h(rawurlencode($me)) ?>" style="font-size:13px">group chat →</a>
  <a href="call.php?user=<?= $h(rawurlencode($me)) ?>" style="font-size:13px">WebRTC call →</a>
  <span id="state">connecting…</span>
</header>
<p id="unread"><?= $unread > 0 ? $h("$unread unread since your last visit") : 'No unread messages' ?></p>
<div id="log" aria-live="polite"></div>
<form id="send">
  <input id="text" autocomplete="off" placeholder="Message <?= $h($peer) ?>…" maxlength="2000" autofocus>
  <button>Send</button>
</form>
<script>
const me = <?= json_encode($me) ?>, peer = <?= json_encode($peer) ?>;
const conv = <?= json_encode($conv) ?>;
const history = <?= json_encode($history, JSON_UNESCAPED_UNICODE) ?>;
let lastSeq = <?= (int) $lastSeq ?>, readSeq = 0;
const log = document.getElementById('log'), state = document.getElementById('state');
const seen = new Set(), mine = [];

function show(m) {
  const key = m.conv + '#' + m.seq;           // drop duplicates by (conversation, sequence)
  if (seen.has(key)) return;
  seen.add(key);
  const row = document.createElement('div');
  row.className = 'msg' + (m.from === me ? ' mine' : '');
  const bubble = document.createElement('span');
  bubble.textContent = (m.data && m.data.text) ?? JSON.stringify(m.data);
  const meta = document.createElement('small');
  meta.className = 'meta';
  meta.textContent = (m.from ?? 'app') + ' · ' + new Date(m.ts).toLocaleTimeString();
  row.append(m.from === me ? meta : bubble, m.from === me ? bubble : meta);
  if (m.from === me) mine.push({ts: m.ts, row});
  log.append(row);
  log.scrollTop = log.scrollHeight;
  lastSeq = Math.max(lastSeq, m.seq);
}

function markRead(ws) {
  if (document.visibilityState !== 'visible' || lastSeq <= readSeq || ws.readyState !== 1) return;
  readSeq = lastSeq;
  ws.send(JSON.stringify({type: 'read', conv, seq: lastSeq}));
}

function markSeen(receipt) {           // peer read everything of mine up to receipt.ts
  for (const m of mine) {
    if (m.ts <= receipt.ts && !m.row.querySelector('.seen')) {
      const s = document.createElement('small');
      s.className = 'seen';
      s.textContent = 'seen';
      m.row.prepend(s);
    }
  }
}

history.forEach(show);

let delay = 500;
let current = null;
function connect() {
  // Resume right after what this page already shows: no gap, no duplicate.
  const cursors = encodeURIComponent(JSON.stringify({[conv]: lastSeq}));
  const ws = current = new WebSocket(<?= json_encode($wsUrl) ?> + '?device=browser&token=' +
    encodeURIComponent(<?= json_encode($token) ?>) + '&cursors=' + cursors);
  ws.onopen = () => { delay = 500; };
  ws.onmessage = (e) => {
    const f = JSON.parse(e.data);
    if (f.type === 'welcome') { state.textContent = 'live'; state.className = 'live'; markRead(ws); }
    else if (f.type === 'message' && f.conv === conv) { show(f); markRead(ws); }
    else if (f.type === 'receipt') markSeen(f);
    else if (f.type === 'read') readSeq = Math.max(readSeq, f.seq);
  };
  ws.onclose = (e) => {
    state.textContent = 'reconnecting… (' + e.code + (e.reason ? ': ' + e.reason : '') + ')';
    state.className = '';
    if (e.code === 4004) return;              // kicked by the app: stay disconnected
    setTimeout(connect, delay + Math.random() * delay);
    delay = Math.min(delay * 2, 10000);
  };
}
connect();
document.addEventListener('visibilitychange', () => current && markRead(current));

document.getElementById('send').addEventListener('submit', async (e) => {
  e.preventDefault();
  const input = document.getElementById('text');
  const text = input.value.trim();
  if (!text) return;
  const r = await fetch('send.php', {
    method: 'POST',
    headers: {'Content-Type': 'application/json'},
    body: JSON.stringify({from: me, to: peer, text}),
  });
  if (r.ok) input.value = '';
  else alert('not sent: ' + await r.text());
});
</script>
</body>
</html>
