<?php
/**
 * The shop's page with the customer-service widget (bottom right).
 *
 * The widget talks to api.php: "visitor.start" makes the browser a visitor (or resumes the
 * one whose token it kept), gets it assigned to the least busy online agent, and hands back a
 * connect token (role "visitor"). The sidecar's JavaScript client (chat.js, loaded from the
 * sidecar) then carries the messages to and from the visitor's group "cs-<visitor id>", which
 * only the visitor and their agent belong to. ?transport=websocket|sse|poll forces one transport.
 */
declare(strict_types=1);

require __DIR__ . '/../bootstrap.php';

header('Content-Type: text/html; charset=utf-8');
// Where browsers reach the sidecar over HTTP: CHAT_URL, else derived from CHAT_WS_URL.
$chatUrl = \CustomerService\Config::fromEnvironment()->chatUrl();
?>
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Leaf &amp; Kettle — fine teas</title>
<link rel="stylesheet" href="assets/cs.css">
</head>
<body class="shop">
<header><h1>Leaf &amp; Kettle</h1><span>fine teas since 1998</span></header>
<main>
  <p>Questions about an order or a tea? Our team answers in the chat, bottom right.</p>
  <div class="products">
    <div class="product"><div class="swatch" style="background:#7a9a4a"></div><b>Sencha Kabusecha</b><span class="muted">Japan · 100 g · €14.50</span></div>
    <div class="product"><div class="swatch" style="background:#8a4b2a"></div><b>Darjeeling First Flush</b><span class="muted">India · 100 g · €18.00</span></div>
    <div class="product"><div class="swatch" style="background:#3d2b1f"></div><b>Lapsang Souchong</b><span class="muted">China · 100 g · €11.90</span></div>
    <div class="product"><div class="swatch" style="background:#c9a94a"></div><b>Rooibos Vanilla</b><span class="muted">South Africa · 100 g · €8.40</span></div>
  </div>
</main>

<button id="launcher">💬 Chat with us</button>
<section id="widget" aria-label="Customer service chat">
  <div class="head">
    <span class="dot" id="agent-dot"></span>
    <div class="title"><b>Customer service</b><small id="status">connecting…</small></div>
    <button id="minimize" title="Minimize" aria-label="Minimize">–</button>
  </div>
  <div class="notice" id="notice" hidden></div>
  <div class="log" id="log" aria-live="polite"></div>
  <div class="typing" id="typing"></div>
  <form class="compose" id="compose">
    <input id="text" autocomplete="off" maxlength="2000" placeholder="Type your message…" aria-label="Message">
    <button id="send" disabled>Send</button>
  </form>
</section>

<script src="assets/cs.js"></script>
<script type="module">
import { ChatClient } from <?= json_encode("$chatUrl/chat.js") ?>;

const chatUrl = <?= json_encode($chatUrl) ?>;
const transport = new URLSearchParams(location.search).get('transport');
const TOKEN_KEY = 'cs_visitor_token';
const $ = (id) => document.getElementById(id);
const names = {};
let view = null, chat = null, token = localStorage.getItem(TOKEN_KEY), typingTimer = 0;

function setStatus() {
  const a = view?.agent;
  $('agent-dot').className = 'dot' + (a?.online ? ' on' : '');
  if (!view) return;
  if (view.status === 'assigned' && a) $('status').textContent = a.name + ' is helping you';
  else if (view.status === 'closed') $('status').textContent = 'Conversation closed — write to start again';
  else if (view.agents_online === 0) $('status').textContent = 'No agent online — leave a message';
  else $('status').textContent = 'Connecting you to an agent…';
  $('notice').hidden = !view.notice;
  $('notice').textContent = view.notice ?? '';
}

function show(m) {
  const d = m.data ?? {};
  if (d.kind === 'system' && (d.event === 'assigned' || d.event === 'transferred')) {
    view.status = 'assigned';
    view.agent = { id: d.agent, name: d.agent_name, online: true };
    view.notice = null;
    names[d.agent] = d.agent_name;
  } else if (d.kind === 'system' && d.event === 'closed') {
    view.status = 'closed'; view.agent = null;
  }
  setStatus();
  if (d.kind === 'system' && d.event === 'waiting') return; // the banner above says it already
  csInsert($('log'), m, csMessageRow(m, view.visitor.id, names));
  if (m.from !== view.visitor.id) $('typing').textContent = '';
  markRead();
}

function markRead() {
  const seq = chat?.cursors[view.conversation];
  if (seq && document.visibilityState === 'visible' && $('widget').classList.contains('open')) {
    chat.read(view.conversation, seq);
  }
}

/** visitor.start: (re)starts this visitor's conversation and mints a fresh token. */
async function start() {
  try {
    view = await csApi('visitor.start', { method: 'POST', token, body: {} });
  } catch (e) {
    if (!token || (e.status !== 401 && e.status !== 403)) throw e;
    token = null; // expired or unknown: start as a new visitor
    view = await csApi('visitor.start', { method: 'POST', body: {} });
  }
  token = view.token;
  localStorage.setItem(TOKEN_KEY, token);
  if (view.agent) names[view.agent.id] = view.agent.name;
  setStatus();
  if (!chat) {
    let fresh = true;
    chat = window.chat = new ChatClient({
      url: chatUrl,
      device: 'browser',
      // The token visitor.start just minted; when the sidecar refuses it later, a new one.
      token: async () => { if (!fresh) await start(); fresh = false; return token; },
      ...(transport ? { transports: [transport] } : {}),
    });
    chat.on('message', show);
    chat.on('state', (s) => {
      $('widget').dataset.state = s.state;
      $('send').disabled = s.state !== 'open';
      if (s.state !== 'open') $('status').textContent = 'reconnecting…' + (s.code ? ' (' + s.code + ')' : '');
      else setStatus();
    });
    chat.on('typing', (f) => {
      if (f.group !== view.group || f.from === view.visitor.id) return;
      $('typing').textContent = (names[f.from] ?? 'The agent') + ' is typing…';
      clearTimeout(typingTimer);
      typingTimer = setTimeout(() => { $('typing').textContent = ''; }, 3000);
    });
    chat.on('error', (f) => { $('typing').textContent = 'Not sent: ' + f.message; });
    for (const m of view.history) if (chat.accept(m)) show(m);
    chat.connect();
  } else {
    chat.setToken(token);
    for (const m of view.history) if (chat.accept(m)) show(m);
  }
}

async function open() {
  $('widget').classList.add('open');
  $('launcher').style.display = 'none';
  if (!view) {
    try { await start(); } catch (e) { $('status').textContent = 'Chat unavailable: ' + e.message; }
  }
  markRead();
  $('text').focus();
}

$('launcher').addEventListener('click', open);
$('minimize').addEventListener('click', () => { $('widget').classList.remove('open'); $('launcher').style.display = ''; });
const typing = csThrottle(() => chat?.typing({ group: view.group }), 2000);
$('text').addEventListener('input', () => view && typing());
$('compose').addEventListener('submit', async (e) => {
  e.preventDefault();
  const text = $('text').value.trim();
  if (!text || !view) return;
  if (view.status === 'closed') await start(); // opens the conversation again
  $('text').value = '';
  chat.send({ group: view.group }, { text }).catch((err) => { $('typing').textContent = 'Not sent (' + err.code + '): ' + text; });
});
document.addEventListener('visibilitychange', markRead);
if (token) open(); // a returning visitor sees their conversation at once
</script>
</body>
</html>
