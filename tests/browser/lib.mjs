// Shared by the browser scenarios (tests/browser/*.mjs): starts Debian's headless chromium
// through playwright-core, opens pages, waits for conditions, and talks to the Rust test that
// owns the servers (tests/e2e/browser.rs) over stdin/stdout. Run only by that test, and
// chat.mjs also by tests/e2e/deploy.rs (the demo stack behind nginx).
import { chromium } from 'playwright-core';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';

/** Upper bound for anything a scenario waits on. */
export const PATIENCE = 20000;

export function env(name) {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: run the scenarios through tests/e2e/browser.rs (make test)`);
  return v;
}

// Without the background-networking flags chromium's own connections (updates, sync …) get in
// the way on machines without outside access; QUIC and the GPU are not wanted headless.
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

/** A fresh chromium (playwright gives every launch a new temporary profile). */
export async function launch() {
  return chromium.launch({
    executablePath: process.env.CHAT_CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ARGS,
    timeout: PATIENCE * 2,
  });
}

/**
 * A page in its own browser context (own storage, like another person's browser). Page errors
 * and failed console messages fail the scenario; everything the page logs goes to stderr.
 */
export async function open(browser, url, label, viewport = { width: 900, height: 640 }) {
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  page.setDefaultTimeout(PATIENCE);
  page.on('pageerror', (e) => fail(`${label}: uncaught error in the page: ${e.stack || e}`));
  page.on('console', (m) => console.error(`[${label}] ${m.type()}: ${m.text()}`));
  const res = await page.goto(url);
  if (!res || !res.ok()) throw new Error(`${label}: GET ${url} answered ${res && res.status()}: ${res && await res.text()}`);
  return page;
}

let failure = null;
/** Records the first failure; `main` reports it (events of the page cannot throw into the scenario). */
export function fail(message) {
  failure ??= new Error(message);
  console.error('FAIL: ' + message);
}

/** Waits until fn(arg) is truthy in the page, with a description for the timeout message. */
export async function until(page, what, fn, arg) {
  try {
    return await page.waitForFunction(fn, arg, { timeout: PATIENCE, polling: 50 });
  } catch (e) {
    throw new Error(`timed out after ${PATIENCE} ms waiting for: ${what}\n${e.message.split('\n')[0]}`);
  }
}

/** Texts of the bubbles in the demo page's log, in order. */
export function texts(page) {
  return page.evaluate(() => [...document.querySelectorAll('#log .msg span')].map((e) => e.textContent));
}

/** Waits until the demo page's log shows exactly `expected` (each once, in this order). */
export async function expectTexts(page, label, expected) {
  try {
    await page.waitForFunction((want) => {
      const got = [...document.querySelectorAll('#log .msg span')].map((e) => e.textContent);
      return got.length === want.length && got.every((t, i) => t === want[i]);
    }, expected, { timeout: PATIENCE, polling: 50 });
  } catch {
    throw new Error(`${label}: the log should show exactly ${JSON.stringify(expected)}, shows ${JSON.stringify(await texts(page))}`);
  }
}

/** Waits until the demo page's client is open, and checks the transport it uses. */
export async function expectOpen(page, label, transport) {
  await until(page, `${label} connected`, () => document.getElementById('state')?.dataset.state === 'open');
  const t = await page.evaluate(() => document.getElementById('state').dataset.transport);
  if (transport && t !== transport) throw new Error(`${label}: expected transport ${transport}, the client uses ${t}`);
  return t;
}

/** Types a message into the page's compose box and submits it. */
export async function say(page, text) {
  await page.fill('#text', text);
  await page.press('#text', 'Enter');
}

export async function screenshot(page, name) {
  const dir = env('ARTIFACTS');
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, name + '.png');
  await page.screenshot({ path: file });
  console.error('screenshot: ' + file);
}

// The Rust side answers each "@<command>" line on our stdout with one line on our stdin.
const lines = readline.createInterface({ input: process.stdin })[Symbol.asyncIterator]();

/** Asks the Rust test to act (e.g. "restart-sidecar") and waits until it has. */
export async function ask(command) {
  process.stdout.write('@' + command + '\n');
  const { value, done } = await lines.next();
  if (done || value !== 'ok') throw new Error(`the test harness answered ${JSON.stringify(value)} to ${command}`);
}

/** Runs a scenario: exit 0 only when it finished and nothing failed on the way. */
export async function main(scenario) {
  let browser;
  try {
    browser = await launch();
    await scenario(browser);
    if (failure) throw failure;
    process.stdout.write('PASS\n');
  } catch (e) {
    console.error(e.stack || String(e));
    process.exitCode = 1;
  } finally {
    await browser?.close().catch(() => {});
    process.exit();
  }
}
