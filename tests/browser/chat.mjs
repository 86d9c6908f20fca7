// Scenario: two browsers chat on the one-to-one demo page (php-examples/demo/index.php), each
// on a given transport: `node chat.mjs websocket websocket`, `node chat.mjs sse poll`.
// Messages go both ways through chat.js, the read receipt comes back ("seen").
import { env, main, open, expectOpen, expectTexts, say, until } from './lib.mjs';

const [ta, tb] = process.argv.slice(2);
const base = env('DEMO_URL');
const url = (user, t) => `${base}/?user=${user}` + (t && t !== 'auto' ? `&transport=${t}` : '');

await main(async (browser) => {
  const alice = await open(browser, url('alice', ta), 'alice');
  const bob = await open(browser, url('bob', tb), 'bob');
  await expectOpen(alice, 'alice', ta === 'auto' ? null : ta);
  await expectOpen(bob, 'bob', tb === 'auto' ? null : tb);

  const first = `hello bob, alice here on ${ta}`;
  await say(alice, first);
  await expectTexts(bob, 'bob', [first]);
  await expectTexts(alice, 'alice', [first]);        // her own message, back through her inbox

  const second = `hi alice, bob here on ${tb}`;
  await say(bob, second);
  await expectTexts(alice, 'alice', [first, second]);
  await expectTexts(bob, 'bob', [first, second]);

  // Bob's page marked the conversation read: alice's message shows "seen".
  await until(alice, 'alice sees the read receipt', () => document.querySelector('#log .msg.mine .seen'));

  for (const [page, label] of [[alice, 'alice'], [bob, 'bob']]) {
    const dropped = await page.evaluate(() => window.chat.duplicatesDropped);
    if (dropped !== 0) throw new Error(`${label}: ${dropped} duplicate messages arrived in a plain exchange`);
  }
});
