<?php
/**
 * Demo chat page: open ?user=alice and ?user=bob in two tabs.
 *
 * The page mints a connect token with chat_token() and renders the history from PHP; the
 * browser then uses the sidecar's JavaScript client (chat.js, loaded from the sidecar) to
 * resume right after that history, send, and mark messages read. ?transport=sse or
 * ?transport=poll forces one transport (default: WebSocket, falling back to SSE, then
 * long-polling). PHP can push at any time too: send.php shows chat_push().
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
if (isset($_GET['token'])) { // chat.js asks for a fresh token here when the old one is refused
    header('Content-Type: text/plain');
    echo chat_token($me, 3600);
    exit;
}
$token = chat_token($me, 3600);
$conv = "u:$me";
// History and unread state come straight from PHP; the client resumes after them.
$history = chat_history($conv, 50);
$unread = chat_unread($me)[$conv] ?? 0;
$lastSeq = $history ? end($history)['seq'] : 0;
// The sidecar's HTTP address as browsers reach it (it serves chat.js and all transports).
$chatUrl = rtrim(getenv('CHAT_URL') ?: 'http://127.0.0.1:9501', '/');
$transport = in_array($_GET['transport'] ?? null, ['websocket', 'sse', 'poll'], true) ? $_GET['transport'] : null;
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
  .msg.error { color: #b42318; font-size: 13px; }
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
<script type="module">
import {ChatClient} from <?= json_encode("$chatUrl/chat.js") ?>;

const me = <?= json_encode($me) ?>, peer = <?= json_encode($peer) ?>;
const conv = <?= json_encode($conv) ?>;
const history = <?= json_encode($history, JSON_UNESCAPED_UNICODE) ?>;
const transport = <?= json_encode($transport) ?>;
let firstToken = <?= json_encode($token) ?>, readSeq = 0, lastSeq = <?= (int) $lastSeq ?>;
const log = document.getElementById('log'), state = document.getElementById('state');
const mine = [];

function show(m) {
  const row = document.createElement('div');
  row.className = 'msg' + (m.from === me ? ' mine' : '');
  row.dataset.seq = m.seq;
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

function markRead() {
  if (document.visibilityState !== 'visible' || lastSeq <= readSeq) return;
  readSeq = lastSeq;
  chat.read(conv, lastSeq);
}

history.forEach(show);

const chat = window.chat = new ChatClient({
  url: <?= json_encode($chatUrl) ?>,
  device: 'browser',
  // The token PHP rendered first; when the sidecar refuses it (expired), a fresh one from PHP.
  token: async () => {
    if (firstToken) { const t = firstToken; firstToken = null; return t; }
    const r = await fetch('?' + new URLSearchParams({user: me, token: 1}));
    return r.text();
  },
  cursors: {[conv]: lastSeq},          // resume right after the history above: no gap, no duplicate
  ...(transport ? {transports: [transport]} : {}),
});
chat.on('state', (s) => {
  state.dataset.state = s.state;
  state.dataset.transport = s.transport ?? '';
  state.className = s.state === 'open' ? 'live' : '';
  state.textContent = s.state === 'open' ? 'live · ' + s.transport
    : s.state === 'closed' ? 'disconnected' + (s.reason ? ': ' + s.reason : '')
    : s.state + '…' + (s.code ? ' (' + s.code + ')' : '');
  if (s.state === 'open') markRead();
});
chat.on('message', (m) => { if (m.conv === conv) { show(m); markRead(); } });
chat.on('receipt', markSeen);
chat.on('read', (r) => { if (r.conv === conv) readSeq = Math.max(readSeq, r.seq); });
chat.connect();
document.addEventListener('visibilitychange', markRead);

document.getElementById('send').addEventListener('submit', (e) => {
  e.preventDefault();
  const input = document.getElementById('text');
  const text = input.value.trim();
  if (!text) return;
  input.value = '';
  // Queued while disconnected; the message itself comes back through our own inbox.
  chat.send({to: peer}, {text}).catch((err) => {
    const row = document.createElement('div');
    row.className = 'msg error';
    row.textContent = 'not sent (' + err.code + '): ' + text;
    log.append(row);
  });
});
</script>
</body>
</html>
