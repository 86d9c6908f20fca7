// Scenario: the demo pages in use, each checked and then photographed into $ARTIFACTS:
// one-to-one chat, group chat (typing, who is online), a WebRTC call set up through chat.js's
// signalling, and the customer-service visitor widget with the agent console answering.
import { env, main, open, expectOpen, expectTexts, say, until, screenshot } from './lib.mjs';

const demo = env('DEMO_URL');
const cs = env('CS_URL');

await main(async (browser) => {
  // One-to-one.
  const alice = await open(browser, `${demo}/?user=alice`, 'alice');
  const bob = await open(browser, `${demo}/?user=bob`, 'bob');
  await expectOpen(alice, 'alice');
  await expectOpen(bob, 'bob');
  const lines = ['Hi Bob! Are we still on for lunch?', 'Yes, 12:30 at the usual place.', 'Great, see you there 👋'];
  await say(alice, lines[0]);
  await expectTexts(bob, 'bob', lines.slice(0, 1));
  await say(bob, lines[1]);
  await expectTexts(alice, 'alice', lines.slice(0, 2));
  await say(alice, lines[2]);
  await expectTexts(bob, 'bob', lines);
  await until(alice, 'alice sees "seen"', () => document.querySelectorAll('#log .msg.mine .seen').length === 2);
  await screenshot(alice, 'one-to-one');

  // Group chat: three members, one of them typing.
  const room = {};
  for (const u of ['alice', 'bob', 'carol']) {
    room[u] = await open(browser, `${demo}/group.php?user=${u}&room=lobby`, `group-${u}`);
    await expectOpen(room[u], `group-${u}`);
  }
  const said = { alice: 'Morning all, standup in 5?', bob: 'On my way.', carol: 'Starting the call now.' };
  for (const [u, text] of Object.entries(said)) {
    await say(room[u], text);
    await until(room.alice, `alice sees ${u}'s message`, (t) => [...document.querySelectorAll('#log .msg')].some((m) => m.textContent.includes(t)), text);
  }
  await until(room.alice, 'three messages, each once', () => document.querySelectorAll('#log .msg').length === 3);
  await until(room.alice, 'everyone shown online', () => document.getElementById('count').textContent === '3');
  await room.bob.type('#text', 'Sorry, one sec', { delay: 20 });
  await until(room.alice, 'bob typing', () => document.getElementById('typing').textContent.includes('bob is typing'));
  await screenshot(room.alice, 'group');

  // WebRTC call: offer, answer and ICE through the sidecar, then a data channel peer to peer.
  const callA = await open(browser, `${demo}/call.php?user=alice`, 'call-alice');
  const callB = await open(browser, `${demo}/call.php?user=bob`, 'call-bob');
  for (const [p, l] of [[callA, 'call-alice'], [callB, 'call-bob']]) {
    await until(p, `${l} signalling open`, () => document.getElementById('log').textContent.includes('signalling channel open'));
  }
  await callA.click('#call');
  for (const [p, l] of [[callA, 'call-alice'], [callB, 'call-bob']]) {
    await until(p, `${l} connected peer to peer`, () => document.getElementById('status').textContent === 'connected peer-to-peer');
  }
  await callA.click('#hello');
  await until(callB, 'bob gets the data-channel message', () => document.getElementById('log').textContent.includes('⇐ peer-to-peer: hello from alice'));
  await screenshot(callB, 'call');

  // Customer service: the agent is online first, so the visitor is assigned at once.
  const agent = await open(browser, `${cs}/agent.php?agent=ann`, 'agent', { width: 1200, height: 720 });
  await until(agent, 'the console is online', () => document.getElementById('conn').dataset.state === 'open');
  const visitor = await open(browser, `${cs}/`, 'visitor', { width: 1000, height: 720 });
  await visitor.click('#launcher');
  await until(visitor, 'the widget is connected', () => document.getElementById('widget').dataset.state === 'open');
  await until(visitor, 'assigned to Ann', () => document.getElementById('status').textContent === 'Ann Lee is helping you');
  const question = 'Hello! Is the Darjeeling First Flush in stock?';
  await say(visitor, question);
  await until(agent, 'the conversation is listed', () => document.querySelector('#mine .item'));
  await agent.click('#mine .item');
  await until(agent, 'the question shows in the console', (q) => [...document.querySelectorAll('#log .bubble')].some((b) => b.textContent === q), question);
  const answer = "Yes, from this spring's harvest. Shall I reserve 100 g for you?";
  await say(agent, answer);
  await until(visitor, 'the answer reaches the visitor', (a) => [...document.querySelectorAll('#log .bubble')].some((b) => b.textContent === a), answer);
  // Typing indicators go out at most every 2 s, and one went with the question: type on for
  // longer than that, and catch the indicator while it shows.
  const typing = visitor.type('#text', 'Yes please, and a tin of the Sencha as well, if you have one left', { delay: 120 });
  await until(agent, 'the visitor typing (and the "new conversation" toast gone)',
    () => document.getElementById('typing').textContent.includes('is typing') && document.getElementById('toast').hidden);
  await screenshot(agent, 'cs-agent-console');
  await typing;
  await screenshot(visitor, 'cs-visitor');
});
