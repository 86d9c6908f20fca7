// Scenario: chat.js's own behaviour, driven from a blank page: fallback WebSocket → SSE →
// long-poll when transports are blocked, a new token from the app's callback after the node
// refuses one (4001), app events, server error codes on rejected sends (over WebSocket and
// over POST /send), and no reconnect after a kick (4004).
import { env, main, until, ask, PATIENCE } from './lib.mjs';

const demo = env('DEMO_URL');
const chatUrl = env('CHAT_URL');

/** A fresh token for `uid`, minted by the demo's PHP (group.php?token=1 answers one). */
async function token(uid) {
  const r = await fetch(`${demo}/group.php?user=${uid}&token=1`);
  if (!r.ok) throw new Error(`token for ${uid}: HTTP ${r.status}`);
  return r.text();
}

/**
 * A page on the demo's origin with nothing running but chat.js, loaded from the sidecar. (A page
 * made up by page.route would count as a public origin, which chromium forbids to reach
 * loopback addresses; send.php's JSON answer to a GET is as blank as a real page gets.)
 */
async function blankPage(browser, label) {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.setDefaultTimeout(PATIENCE);
  page.on('console', (m) => console.error(`[${label}] ${m.type()}: ${m.text()}`));
  await page.goto(`${demo}/send.php`);
  await page.evaluate(async (url) => { window.ChatJs = await import(url + '/chat.js'); }, chatUrl);
  return page;
}

/** Creates `window.c` in the page with these options; it records every state change and message. */
async function client(page, options) {
  await page.evaluate(({ chatUrl, options }) => {
    window.states = []; window.messages = [];
    if (options.tokens) {                  // a list: the callback hands them out in turn
      const list = options.tokens;
      options.token = async () => list.length > 1 ? list.shift() : list[0];
      delete options.tokens;
    }
    window.c = new window.ChatJs.ChatClient({ url: chatUrl, ...options });
    window.c.on('state', (s) => window.states.push({ state: s.state, transport: s.transport, code: s.code }));
    window.c.on('message', (m) => window.messages.push(m.data.text));
    window.c.connect();
  }, { chatUrl, options });
}

const opened = (page) => until(page, 'the client is open', () => window.c.state === 'open');

await main(async (browser) => {
  // 1. A proxy breaks WebSockets (open, but nothing gets through) and event streams: the client
  // ends up on long-polling and works.
  const p1 = await blankPage(browser, 'fallback');
  await p1.routeWebSocket(/\/ws\?/, () => {});   // never connected to the node: no welcome
  await p1.route(/\/sse\?/, (r) => r.abort());
  await client(p1, { token: await token('dora'), openTimeout: 1500 });
  await opened(p1);
  const tried = await p1.evaluate(() => window.states.map((s) => s.transport));
  const used = await p1.evaluate(() => window.c.transport);
  if (used !== 'poll' || !tried.includes('websocket') || !tried.includes('sse')) {
    throw new Error(`expected websocket, then sse, then poll; states: ${JSON.stringify(await p1.evaluate(() => window.states))}`);
  }
  await ask('php chat_push("dora", ["text" => "reached you by long-polling"]);');
  await until(p1, 'the pushed message arrives', () => window.messages.includes('reached you by long-polling'));
  // Live app events: typed ones as `event`, verbatim ones (no `type`) as `raw`.
  await p1.evaluate(() => {
    window.events = [];
    window.c.on('event', (f) => window.events.push(['event', f.data]));
    window.c.on('raw', (f) => window.events.push(['raw', f]));
  });
  await ask('php chat_event("u:dora", ["toast" => "saved"]); chat_event("u:dora", \'{"say":"hi"}\', ["raw" => true]);');
  await until(p1, 'the event and the raw frame arrive',
    () => JSON.stringify(window.events) === JSON.stringify([['event', { toast: 'saved' }], ['raw', { say: 'hi' }]]));

  // 2. The first token is refused (4001): the callback is asked again, and its token works.
  const p2 = await blankPage(browser, 'token');
  await client(p2, { tokens: ['not-a-token', await token('erin')], transports: ['websocket'] });
  await opened(p2);
  const codes = await p2.evaluate(() => window.states.map((s) => s.code).filter(Boolean));
  if (!codes.includes(4001)) throw new Error(`expected a 4001 before the welcome, got close codes ${JSON.stringify(codes)}`);

  // 3. Refused sends reject with the node's error code, over WebSocket and over POST /send.
  for (const transport of ['websocket', 'poll']) {
    const p = await blankPage(browser, 'send-' + transport);
    await client(p, { token: await token('fred'), transports: [transport] });
    await opened(p);
    const code = await p.evaluate(() => window.c.send({ group: 'not-a-member-here' }, { text: 'x' }).then(() => 'sent', (e) => e.code));
    if (code !== 'forbidden') throw new Error(`${transport}: a send to a foreign group should reject with "forbidden", got ${code}`);
    const ok = await p.evaluate(() => window.c.send({ to: 'dora' }, { text: 'from fred' }));
    if (!ok.id || ok.conv !== 'u:fred' || !(ok.seq > 0)) throw new Error(`${transport}: send resolved with ${JSON.stringify(ok)}`);
  }

  // 4. Kicked by the app: closed for good, queued sends rejected, no reconnect.
  const p4 = await blankPage(browser, 'kick');
  await client(p4, { token: await token('gus'), transports: ['websocket'] });
  await opened(p4);
  await ask('php chat_kick("gus", "logged out");');
  await until(p4, 'the client is closed', () => window.c.state === 'closed');
  const last = await p4.evaluate(() => window.states.at(-1));
  if (last.code !== 4004) throw new Error(`expected close code 4004, got ${JSON.stringify(last)}`);
  const after = await p4.evaluate(() => window.c.send({ to: 'dora' }, { text: 'x' }).then(() => 'sent', (e) => e.code));
  if (after !== 'closed') throw new Error(`a send after the kick should reject with "closed", got ${after}`);
  // The node saw the session end and nothing came back: gus is offline.
  await ask('php if (chat_is_online("gus")) { fwrite(STDERR, "gus is online again"); exit(1); }');
  const states = await p4.evaluate(() => window.states.map((s) => s.state));
  if (states.includes('reconnecting')) throw new Error(`the client reconnected after a kick: ${JSON.stringify(states)}`);
});
