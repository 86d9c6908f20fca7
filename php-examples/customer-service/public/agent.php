<?php
/**
 * The agent console: ?agent=<id> (an id from CS_AGENTS; a real app takes the agent from its
 * own login session instead of the URL).
 *
 * The page mints the agent's connect token (role "agent") and connects with the sidecar's
 * JavaScript client (chat.js, loaded from the sidecar). Once connected the agent is online
 * (chat_is_online), and the console's sync call (api.php?action=agent.sync) assigns waiting
 * visitors and returns the queue, the agent's conversations with unread counts and the
 * visitors' online status. Opening a conversation loads its history with chat_history.
 * ?transport=websocket|sse|poll forces one transport.
 */
declare(strict_types=1);

require __DIR__ . '/../bootstrap.php';

use CustomerService\App;
use CustomerService\Http\ApiError;
use CustomerService\Role;

header('Content-Type: text/html; charset=utf-8');
$h = static fn (string $s): string => htmlspecialchars($s, ENT_QUOTES | ENT_SUBSTITUTE);

try {
    $app = App::fromEnvironment();
    $agentId = $_GET['agent'] ?? null;
    $name = null;
    if (is_string($agentId) && isset($app->config->agents[$agentId])) {
        $name = $app->desk->registerAgent($agentId);
        $token = $app->tokens->issue($agentId, Role::Agent, ['name' => $name]);
    }
} catch (ApiError | \Chat\ChatException | \PDOException | \RuntimeException $e) {
    http_response_code(503);
    error_log('customer-service console: ' . $e->getMessage());
    echo '<!doctype html><title>Console unavailable</title><p>The console is unavailable: ' . $h($e->getMessage()) . '</p>';
    exit;
}

if ($name === null) { // no or unknown agent: the demo's "login" is picking one
    ?>
<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Agent console — sign in</title><link rel="stylesheet" href="assets/cs.css"></head>
<body><div class="roster"><h2>Agent console</h2><p class="muted">Sign in as:</p>
<?php foreach ($app->config->agents as $id => $agentName): ?>
  <a href="?agent=<?= $h(rawurlencode($id)) ?>"><?= $h($agentName) ?> <span class="muted">(<?= $h($id) ?>)</span></a>
<?php endforeach ?>
</div></body></html>
    <?php
    exit;
}
?>
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Console — <?= $h($name) ?></title>
<link rel="stylesheet" href="assets/cs.css">
</head>
<body>
<div class="console">
  <header>
    <h1>Leaf &amp; Kettle · customer service · <?= $h($name) ?></h1>
    <span class="agents" id="agents"></span>
    <span id="conn"><span class="dot"></span>connecting…</span>
  </header>
  <aside>
    <h2>Queue <span id="queue-count"></span></h2>
    <div id="queue"><div class="empty">Nobody is waiting.</div></div>
    <h2>My conversations <span id="mine-count"></span></h2>
    <div id="mine"><div class="empty">No conversations yet.</div></div>
  </aside>
  <section class="pane">
    <div class="bar" id="bar" hidden>
      <div class="who"><span class="dot" id="visitor-dot"></span><b id="visitor-name"></b> <span class="muted" id="visitor-state"></span></div>
      <select id="transfer-to" aria-label="Transfer to"></select>
      <button id="transfer">Transfer</button>
      <button id="close">Close</button>
    </div>
    <div class="log" id="log"><p class="placeholder">Pick a conversation on the left.</p></div>
    <div class="typing" id="typing"></div>
    <form class="compose" id="compose">
      <input id="text" autocomplete="off" maxlength="2000" placeholder="Reply…" aria-label="Reply" disabled>
      <button id="send" disabled>Send</button>
    </form>
  </section>
</div>
<div class="toast" id="toast" hidden></div>

<script src="assets/cs.js"></script>
<script type="module">
import { ChatClient } from <?= json_encode($app->config->chatUrl() . '/chat.js') ?>;

const me = <?= json_encode($agentId) ?>;
let token = <?= json_encode($token) ?>;
const names = { [me]: <?= json_encode($name) ?> };
const $ = (id) => document.getElementById(id);
const messages = new Map();      // conversation id -> Map(seq -> message)
let dash = { conversations: [], queue: [], agents: [] }, selected = null, typingTimer = 0, live = false;

function toast(text) {
  $('toast').textContent = text; $('toast').hidden = false;
  clearTimeout(toast.t); toast.t = setTimeout(() => { $('toast').hidden = true; }, 4000);
}

function store(m) {
  if (!messages.has(m.conv)) messages.set(m.conv, new Map());
  messages.get(m.conv).set(m.seq, m);
}

function entry(vid) {
  return dash.conversations.find((c) => c.visitor.id === vid) ?? dash.queue.find((c) => c.visitor.id === vid);
}

function preview(m) {
  if (!m) return '';
  const d = m.data ?? {};
  if (d.kind === 'system') return d.text;
  return (m.from === me ? 'you: ' : '') + (typeof d.text === 'string' ? d.text : '');
}

function item(c, extra) {
  const el = document.createElement('div');
  el.className = 'item' + (c.visitor.id === selected ? ' sel' : '');
  el.dataset.visitor = c.visitor.id;
  const dot = document.createElement('span');
  dot.className = 'dot' + (c.visitor.online ? ' on' : '');
  dot.title = c.visitor.online ? 'online' : 'offline';
  const who = document.createElement('div');
  who.className = 'who';
  const b = document.createElement('b'); b.textContent = c.visitor.name;
  const s = document.createElement('small'); s.textContent = extra;
  who.append(b, s);
  el.append(dot, who);
  el.addEventListener('click', () => select(c.visitor.id));
  return el;
}

function render() {
  const q = $('queue'), mine = $('mine');
  q.replaceChildren(...dash.queue.map((c) =>
    item(c, `waiting since ${c.waiting_since.slice(11, 16)} · ${c.messages} message${c.messages === 1 ? '' : 's'}`)));
  if (!dash.queue.length) q.innerHTML = '<div class="empty">Nobody is waiting.</div>';
  mine.replaceChildren(...dash.conversations.map((c) => {
    const el = item(c, preview(c.last_message) || 'no messages yet');
    const badge = document.createElement('span');
    badge.className = 'badge' + (c.unread ? '' : ' zero');
    badge.textContent = c.unread;
    badge.title = 'unread';
    el.append(badge);
    return el;
  }));
  if (!dash.conversations.length) mine.innerHTML = '<div class="empty">No conversations yet.</div>';
  $('queue-count').textContent = `(${dash.queue.length})`;
  $('mine-count').textContent = `(${dash.conversations.length})`;
  const online = dash.agents.filter((a) => a.online);
  $('agents').textContent = 'Agents online: ' + (online.map((a) => `${a.name} (${a.active})`).join(', ') || 'none');
  for (const a of dash.agents) names[a.id] = a.name;
  const sel = $('transfer-to');
  const others = online.filter((a) => a.id !== me);
  sel.replaceChildren(...others.map((a) => new Option(`to ${a.name} (${a.active} open)`, a.id)));
  if (!others.length) sel.append(new Option('no other agent online', ''));
  renderBar();
}

function renderBar() {
  const c = selected && entry(selected);
  $('bar').hidden = !c;
  const mineSel = !!c && dash.conversations.includes(c);
  $('text').disabled = $('send').disabled = !mineSel || !live;
  $('transfer').disabled = $('close').disabled = !mineSel;
  $('transfer-to').disabled = !mineSel || !$('transfer-to').value;
  if (!c) return;
  $('visitor-name').textContent = c.visitor.name;
  $('visitor-dot').className = 'dot' + (c.visitor.online ? ' on' : '');
  $('visitor-state').textContent = (c.visitor.online ? 'online' : 'offline') + (mineSel ? '' : ' · waiting in the queue');
}

async function sync() {
  try {
    dash = await csApi('agent.sync', { method: 'POST', token });
    for (const c of dash.conversations) names[c.visitor.id] = c.visitor.name;
    for (const c of dash.queue) names[c.visitor.id] = c.visitor.name;
    if (selected && !entry(selected)) clearPane();
    render();
  } catch (e) {
    toast('sync failed: ' + e.message);
  }
}

/** Coalesces bursts (many assignments at once) into one sync. */
function syncSoon(note) {
  if (syncSoon.timer) return;
  syncSoon.timer = setTimeout(() => { syncSoon.timer = 0; sync().then(() => note && toast(note)); }, 200);
}

function clearPane() {
  selected = null;
  $('log').innerHTML = '<p class="placeholder">Pick a conversation on the left.</p>';
  $('typing').textContent = '';
}

async function select(vid) {
  selected = vid;
  const c = entry(vid);
  render();
  $('log').replaceChildren();
  try {
    const h = await csApi('conversation.history', { token, query: { visitor: vid, limit: 200 } });
    for (const m of h.messages) { chat.accept(m); store(m); }
  } catch (e) {
    toast('history: ' + e.message);
  }
  if (selected !== vid) return;
  const log = $('log');
  log.replaceChildren();
  for (const m of [...(messages.get(c.conversation)?.values() ?? [])].sort((a, b) => a.seq - b.seq)) {
    csInsert(log, m, csMessageRow(m, me, names));
  }
  markRead();
  $('text').focus();
}

function markRead() {
  const c = selected && dash.conversations.find((x) => x.visitor.id === selected);
  if (!c || document.visibilityState !== 'visible') return;
  const seq = chat.cursors[c.conversation];
  if (seq && live) {
    chat.read(c.conversation, seq);
    c.unread = 0;
    render();
  }
}

let fresh = true;
const transport = new URLSearchParams(location.search).get('transport');
const chat = window.chat = new ChatClient({
  url: <?= json_encode($app->config->chatUrl()) ?>,
  device: 'console',
  // The token this page was rendered with; when the sidecar refuses it later, a new one.
  token: async () => {
    if (!fresh) token = (await csApi('agent.login', { method: 'POST', body: { agent: me } })).token;
    fresh = false;
    return token;
  },
  ...(transport ? { transports: [transport] } : {}),
});
chat.on('state', (s) => {
  live = s.state === 'open';
  $('conn').dataset.state = s.state;
  $('conn').innerHTML = live ? '<span class="dot on"></span>online' : '<span class="dot"></span>offline' + (s.code ? ' (' + s.code + ')' : '');
  renderBar();
});
chat.on('message', (m) => {
  if (m.conv === 'u:' + me) {           // notices from the app to this agent
    if (m.data?.kind === 'cs.assigned') syncSoon('New conversation' + (m.data.transferred_from ? ' from ' + (names[m.data.transferred_from] ?? m.data.transferred_from) : ''));
    return;
  }
  store(m);
  const c = dash.conversations.find((x) => x.conversation === m.conv);
  if (c) {
    c.last_message = m;
    if (c.visitor.id !== selected && m.from !== me && m.data?.kind !== 'system') c.unread++;
  }
  if (c && c.visitor.id === selected) {
    csInsert($('log'), m, csMessageRow(m, me, names));
    if (m.from !== me) $('typing').textContent = '';
    markRead();
  }
  render();
});
chat.on('welcome', () => sync());       // online now: this sync also assigns waiting visitors
chat.on('typing', (f) => {
  if (!selected || f.group !== 'cs-' + selected || f.from === me) return;
  $('typing').textContent = (names[f.from] ?? f.from) + ' is typing…';
  clearTimeout(typingTimer);
  typingTimer = setTimeout(() => { $('typing').textContent = ''; }, 3000);
});
chat.on('error', (f) => toast(f.message));

$('compose').addEventListener('submit', (e) => {
  e.preventDefault();
  const text = $('text').value.trim();
  if (!text || !selected) return;
  $('text').value = '';
  chat.send({ group: 'cs-' + selected }, { text }).catch((err) => toast('Not sent (' + err.code + '): ' + text));
});
const typing = csThrottle(() => selected && chat.typing({ group: 'cs-' + selected }), 2000);
$('text').addEventListener('input', typing);

async function handOff(action, body, done) {
  const vid = selected, c = entry(vid);
  try {
    await csApi(action, { method: 'POST', token, body: { visitor: vid, ...body } });
    chat.forget(c.conversation);
    clearPane();
    toast(done);
    await sync();
  } catch (e) {
    toast(e.message);
  }
}
$('transfer').addEventListener('click', () => {
  const to = $('transfer-to').value;
  if (to) handOff('conversation.transfer', { to }, `Transferred to ${names[to] ?? to}`);
});
$('close').addEventListener('click', () => handOff('conversation.close', {}, 'Conversation closed'));
$('transfer-to').addEventListener('change', renderBar);
document.addEventListener('visibilitychange', markRead);

sync();                                   // the queue at once, before the WebSocket is up
chat.connect();
setInterval(sync, 5000);                  // queue, online status, unread counts
</script>
</body>
</html>
