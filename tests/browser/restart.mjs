// Scenario: the sidecar restarts under a connected page (`node restart.mjs <transport>`).
// PHP pushes before, during and after the outage, and the page sends while it is down; the
// page must come back by itself and show every message exactly once, in order.
import { env, main, open, expectOpen, expectTexts, say, until, ask } from './lib.mjs';

const transport = process.argv[2];
const base = env('DEMO_URL');

/** chat_push() from the PHP app (the demo's send.php): works while the sidecar is down too. */
async function push(text) {
  const r = await fetch(`${base}/send.php`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ from: 'bob', to: 'alice', text }),
  });
  if (!r.ok) throw new Error(`send.php answered ${r.status}: ${await r.text()}`);
}

await main(async (alice) => {
  const page = await open(alice, `${base}/?user=alice` + (transport === 'auto' ? '' : `&transport=${transport}`), 'alice');
  await expectOpen(page, 'alice', transport === 'auto' ? null : transport);
  const want = [];
  for (const t of ['before 1', 'before 2', 'before 3']) { await push(t); want.push(t); }
  await expectTexts(page, 'alice before the restart', want);

  await ask('stop-sidecar');
  await until(page, 'alice notices the outage', () => document.getElementById('state').dataset.state !== 'open');
  for (const t of ['while down 1', 'while down 2', 'while down 3']) { await push(t); want.push(t); }
  // Sent from the page while disconnected: waits in chat.js's queue.
  await say(page, 'typed while down');
  want.push('typed while down');

  await ask('start-sidecar');
  await expectOpen(page, 'alice after the restart', transport === 'auto' ? null : transport);
  await expectTexts(page, 'alice after the restart', want);

  for (const t of ['after 1', 'after 2']) { await push(t); want.push(t); }
  await expectTexts(page, 'alice at the end', want);
  const errors = await page.evaluate(() => [...document.querySelectorAll('#log .msg.error')].map((e) => e.textContent));
  if (errors.length) throw new Error('sends failed: ' + errors.join('; '));
});
