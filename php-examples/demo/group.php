<?php
/**
 * Group chat demo: open ?user=alice, ?user=bob and ?user=carol (any name works) in tabs; all
 * are in the room "lobby" (?room= picks another).
 *
 * PHP is the authority on membership: loading the page calls chat_join_group(), and the page
 * shows who is in the room and who is online (chat_group_members, chat_online_users) and the
 * room's history (chat_history). The browser then sends straight over its WebSocket to the
 * group ({"type":"send","group":…}); the sidecar checks membership. Typing indicators and
 * presence/member events arrive as live frames.
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
$wsUrl = getenv('CHAT_WS_URL') ?: 'ws://127.0.0.1:9501/ws';
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
<script>
const me = <?= json_encode($me) ?>, room = <?= json_encode($room) ?>, conv = <?= json_encode($conv) ?>;
const members = new Set(<?= json_encode($members) ?>), online = new Set(<?= json_encode($online) ?>);
const history = <?= json_encode($history, JSON_UNESCAPED_UNICODE) ?>;
let lastSeq = <?= (int) $lastSeq ?>;
const $ = (id) => document.getElementById(id);
const seen = new Set(), typers = new Map();

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
  const key = m.conv + '#' + m.seq;             // drop duplicates by (conversation, sequence)
  if (seen.has(key)) return;
  seen.add(key);
  lastSeq = Math.max(lastSeq, m.seq);
  const row = line('msg' + (m.from === me ? ' mine' : ''), '');
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

let ws = null, delay = 500;
function connect() {
  // Resume right after what this page already shows: no gap, no duplicate.
  const cursors = encodeURIComponent(JSON.stringify({[conv]: lastSeq}));
  ws = new WebSocket(<?= json_encode($wsUrl) ?> + '?device=browser&token=' +
    encodeURIComponent(<?= json_encode($token) ?>) + '&cursors=' + cursors);
  ws.onmessage = (e) => {
    const f = JSON.parse(e.data);
    if (f.type === 'welcome') { $('state').textContent = 'live'; $('state').className = 'live'; delay = 500; online.add(me); renderPeople(); }
    else if (f.type === 'message' && f.conv === conv) show(f);
    else if (f.type === 'typing' && f.group === room && f.from !== me) { typers.set(f.from, Date.now() + 3000); renderTyping(); }
    else if (f.type === 'member' && f.group === room) {
      if (f.event === 'join') members.add(f.uid); else { members.delete(f.uid); online.delete(f.uid); }
      line('event', f.uid + (f.event === 'join' ? ' joined' : ' left'));
      renderPeople();
      refreshPeople();                          // a new member may be online already
    } else if (f.type === 'presence' && f.group === room) {
      if (f.status === 'online') online.add(f.uid); else online.delete(f.uid);
      renderPeople();
    } else if (f.type === 'error') line('event', 'error: ' + f.message);
  };
  ws.onclose = (e) => {
    $('state').textContent = 'reconnecting… (' + e.code + ')';
    $('state').className = '';
    if (e.code === 4004) return;
    setTimeout(connect, delay + Math.random() * delay);
    delay = Math.min(delay * 2, 10000);
  };
}
connect();

let lastTyping = 0;
$('text').addEventListener('input', () => {
  if (Date.now() - lastTyping > 2000 && ws?.readyState === 1) {
    lastTyping = Date.now();
    ws.send(JSON.stringify({type: 'typing', group: room}));
  }
});
$('send').addEventListener('submit', (e) => {
  e.preventDefault();
  const text = $('text').value.trim();
  if (!text || ws?.readyState !== 1) return;
  ws.send(JSON.stringify({type: 'send', group: room, data: {text}}));
  $('text').value = '';
  lastTyping = 0;
});
</script>
</body>
</html>
