<?php
/**
 * Group chat demo: open ?user=alice, ?user=bob and ?user=carol (any name works) in tabs; all
 * are in the room "lobby" (?room= picks another).
 *
 * PHP is the authority on membership: loading the page calls chat_join_group(), and the page
 * shows who is in the room and who is online (chat_group_members, chat_online_users) and the
 * room's history (chat_history). The browser then uses the sidecar's JavaScript client
 * (chat.js, loaded from the sidecar) to send straight to the group; the sidecar checks
 * membership. Typing indicators and presence/member events arrive as live frames.
 * ?transport=websocket|sse|poll forces one transport.
 */
declare(strict_types=1);

$idRule = '/^[A-Za-z0-9_.@+-]{1,32}$/D';
$me = $_GET['user'] ?? null;
$room = $_GET['room'] ?? 'lobby';
if (!is_string($room) || preg_match($idRule, $room) !== 1) {
    http_response_code(400);
    exit('room: 1 to 32 of A-Z a-z 0-9 _ - . @ +');
}
if (!is_string($me) || preg_match($idRule, $me) !== 1) {
    header('Location: ?' . http_build_query(['user' => 'alice', 'room' => $room]));
    exit;
}
// A real app takes the user from its login session and decides who may join which room.
chat_join_group($me, $room);
if (isset($_GET['token'])) { // chat.js asks for a fresh token here when the old one is refused
    header('Content-Type: text/plain');
    echo chat_token($me, 3600);
    exit;
}
if (isset($_GET['online'])) { // the page refreshes who is here with this
    header('Content-Type: application/json');
    echo json_encode(['members' => chat_group_members($room), 'online' => chat_online_users($room)]);
    exit;
}
$token = chat_token($me, 3600);
$conv = "g:$room";
$history = chat_history($conv, 50);
$members = chat_group_members($room);
$online = chat_online_users($room);
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
<title>#<?= $h($room) ?> — <?= $h($me) ?></title>
<style>
  body { font: 15px system-ui, sans-serif; max-width: 860px; margin: 2em auto; color: #222; }
  header { display: flex; justify-content: space-between; align-items: baseline; }
  header a { font-size: 13px; }
  #state { font-size: 13px; color: #888; }
  #state.live { color: #1a7f37; }
  .room { display: grid; grid-template-columns: 1fr 200px; gap: 12px; }
  #log { border: 1px solid #ddd; border-radius: 8px; height: 380px; overflow-y: auto; padding: 8px; background: #fafafa; }
  .msg { margin: 6px 0; }
  .msg b { font-weight: 600; margin-right: 6px; }
  .msg.mine b { color: #0b5cff; }
  .msg small, .event { font-size: 11px; color: #999; }
  .event { text-align: center; margin: 4px 0; }
  #people { border: 1px solid #ddd; border-radius: 8px; padding: 8px 12px; }
  #people h3 { font-size: 13px; margin: 4px 0 8px; color: #555; }
  #people li { list-style: none; margin: 4px 0; }
  #people ul { padding: 0; margin: 0; }
  .dot { display: inline-block; width: 8px; height: 8px; border-radius: 50%; background: #bbb; margin-right: 6px; }
  .dot.on { background: #1a7f37; }
  #typing { height: 18px; font-size: 12px; color: #777; font-style: italic; margin: 4px 2px; }
  form { display: flex; gap: 8px; }
  input { flex: 1; padding: 8px; font-size: 15px; }
  button { padding: 8px 16px; }
</style>
</head>
<body>
<header>
  <h2>#<?= $h($room) ?> <small style="font-weight:normal;color:#888">— you are <?= $h($me) ?></small></h2>
  <span><a href="index.php">one-to-one demo</a> · <span id="state">connecting…</span></span>
</header>
<div class="room">
  <div>
    <div id="log" aria-live="polite"></div>
    <div id="typing"></div>
    <form id="send">
      <input id="text" autocomplete="off" placeholder="Message #<?= $h($room) ?>…" maxlength="2000" autofocus>
      <button>Send</button>
    </form>
  </div>
  <aside id="people"><h3>Members · <span id="count"></span> online</h3><ul id="members"></ul></aside>
</div>
<script type="module">
import {ChatClient} from <?= json_encode("$chatUrl/chat.js") ?>;

const me = <?= json_encode($me) ?>, room = <?= json_encode($room) ?>, conv = <?= json_encode($conv) ?>;
const members = new Set(<?= json_encode($members) ?>), online = new Set(<?= json_encode($online) ?>);
const history = <?= json_encode($history, JSON_UNESCAPED_UNICODE) ?>;
const transport = <?= json_encode($transport) ?>;
let lastSeq = <?= (int) $lastSeq ?>, firstToken = <?= json_encode($token) ?>;
const $ = (id) => document.getElementById(id);
const typers = new Map();

function renderPeople() {
  const ul = $('members');
  ul.replaceChildren(...[...members].sort().map((u) => {
    const li = document.createElement('li');
    const dot = document.createElement('span');
    dot.className = 'dot' + (online.has(u) ? ' on' : '');
    li.append(dot, u + (u === me ? ' (you)' : ''));
    return li;
  }));
  $('count').textContent = [...members].filter((u) => online.has(u)).length;
}

function line(cls, text) {
  const div = document.createElement('div');
  div.className = cls;
  div.textContent = text;
  $('log').append(div);
  $('log').scrollTop = $('log').scrollHeight;
  return div;
}

function show(m) {
  lastSeq = Math.max(lastSeq, m.seq);
  const row = line('msg' + (m.from === me ? ' mine' : ''), '');
  row.dataset.seq = m.seq;
  const who = document.createElement('b');
  who.textContent = m.from ?? 'app';
  const text = document.createTextNode((m.data && m.data.text) ?? JSON.stringify(m.data));
  const when = document.createElement('small');
  when.textContent = ' ' + new Date(m.ts).toLocaleTimeString();
  row.append(who, text, when);
  typers.delete(m.from);
  renderTyping();
}

function renderTyping() {
  const now = Date.now();
  for (const [u, until] of typers) if (until < now) typers.delete(u);
  const names = [...typers.keys()];
  $('typing').textContent = names.length === 0 ? '' :
    names.length === 1 ? names[0] + ' is typing…' : names.join(', ') + ' are typing…';
}
setInterval(renderTyping, 1000);

history.forEach(show);
renderPeople();

// Presence events keep the list current; this re-reads it from PHP (chat_online_users) when
// someone joins, and now and then in case an event was missed while reconnecting.
async function refreshPeople() {
  const r = await fetch('group.php?' + new URLSearchParams({user: me, room, online: 1}));
  if (!r.ok) return;
  const now = await r.json();
  members.clear(); now.members.forEach((u) => members.add(u));
  online.clear(); now.online.forEach((u) => online.add(u));
  renderPeople();
}
setInterval(refreshPeople, 15000);

const chat = window.chat = new ChatClient({
  url: <?= json_encode($chatUrl) ?>,
  device: 'browser',
  token: async () => {                          // PHP's token first, later a fresh one from PHP
    if (firstToken) { const t = firstToken; firstToken = null; return t; }
    return (await fetch('group.php?' + new URLSearchParams({user: me, room, token: 1}))).text();
  },
  cursors: {[conv]: lastSeq},                   // resume right after the history above
  ...(transport ? {transports: [transport]} : {}),
});
chat.on('state', (s) => {
  $('state').dataset.state = s.state;
  $('state').dataset.transport = s.transport ?? '';
  $('state').className = s.state === 'open' ? 'live' : '';
  $('state').textContent = s.state === 'open' ? 'live · ' + s.transport : s.state + '…' + (s.code ? ' (' + s.code + ')' : '');
  if (s.state === 'open') { online.add(me); renderPeople(); }
});
chat.on('message', (m) => { if (m.conv === conv) show(m); });
chat.on('typing', (f) => {
  if (f.group === room && f.from !== me) { typers.set(f.from, Date.now() + 3000); renderTyping(); }
});
chat.on('member', (f) => {
  if (f.group !== room) return;
  if (f.event === 'join') members.add(f.uid); else { members.delete(f.uid); online.delete(f.uid); }
  line('event', f.uid + (f.event === 'join' ? ' joined' : ' left'));
  renderPeople();
  refreshPeople();                              // a new member may be online already
});
chat.on('presence', (f) => {
  if (f.group !== room) return;
  if (f.status === 'online') online.add(f.uid); else online.delete(f.uid);
  renderPeople();
});
chat.on('error', (f) => line('event', 'error: ' + f.message));
chat.connect();

let lastTyping = 0;
$('text').addEventListener('input', () => {
  if (Date.now() - lastTyping > 2000) {
    lastTyping = Date.now();
    chat.typing({group: room});
  }
});
$('send').addEventListener('submit', (e) => {
  e.preventDefault();
  const text = $('text').value.trim();
  if (!text) return;
  $('text').value = '';
  lastTyping = 0;
  // Queued while disconnected; the message comes back through the group like everyone's.
  chat.send({group: room}, {text}).catch((err) => line('event', 'not sent (' + err.code + '): ' + text));
});
</script>
</body>
</html>
