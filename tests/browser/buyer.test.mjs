// Browser test of the buyer pages (issue 7), driven by Debian's Chromium via
// playwright-core. Started by run.sh, which builds and starts the server and
// creates the sale; this file only talks to it over HTTP.
//
//   BASE_URL   http://127.0.0.1:<port> of the running server
//   SALE_ID    a FIFO sale with a waiting room and exactly 2 units
//   OUT_DIR    where screenshots go
//
// Test 1: a buyer opens /, follows the sale link, joins, waits in line behind
// two other visitors until the admission ticker lets them in, holds 2, sees
// the hold's countdown (and the hold again after a reload), pays with the dev
// checkout and sees the confirmed order with its 2 units.
// Test 2: a second buyer, in a separate browser context, opens the sale page
// and is told it is sold out.
//
// Prints one line per test and then "<n> passed, <m> failed"; exits non-zero
// when anything failed.

import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';
import path from 'node:path';

const BASE_URL = (process.env.BASE_URL || '').replace(/\/$/, '');
const SALE_ID = process.env.SALE_ID || '';
const OUT_DIR = process.env.OUT_DIR || path.join(path.dirname(new URL(import.meta.url).pathname), 'out');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const TEST_TIMEOUT_MS = 90_000;

if (!BASE_URL || !SALE_ID) {
  console.error('BASE_URL and SALE_ID must be set (run tests/browser/run.sh)');
  process.exit(2);
}
mkdirSync(OUT_DIR, { recursive: true });

// A phone-sized window: the pages must read well there.
const PHONE = { viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, locale: 'en-US', timezoneId: 'UTC' };

function assert(cond, message) {
  if (!cond) throw new Error(message);
}

async function shot(page, name) {
  const file = path.join(OUT_DIR, name);
  await page.screenshot({ path: file, fullPage: true });
  console.log(`    screenshot ${path.relative(process.cwd(), file)}`);
}

async function api(method, urlPath, { token, body } = {}) {
  const headers = { Accept: 'application/json' };
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const res = await fetch(BASE_URL + urlPath, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = text; }
  return { status: res.status, data };
}

async function view(page) {
  return page.evaluate(() => document.body.getAttribute('data-view'));
}

// Collects uncaught page errors and Content-Security-Policy refusals: any
// is a failure. (Failed requests are expected: 410 sold_out is an answer.)
function watchErrors(page, errors) {
  page.on('pageerror', (err) => errors.push(`page error: ${err.message}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error' && /Content Security Policy|Refused to/i.test(msg.text())) {
      errors.push(`console: ${msg.text()}`);
    }
  });
}

async function newPage(browser, errors) {
  const context = await browser.newContext(PHONE);
  const page = await context.newPage();
  page.setDefaultTimeout(20_000);
  watchErrors(page, errors);
  return { context, page };
}

const tests = [];
function test(name, fn) { tests.push({ name, fn }); }

let browser;

test('buyer joins, is admitted by the ticker, holds 2, pays and sees the order', async () => {
  const errors = [];
  const { context, page } = await newPage(browser, errors);
  try {
    // The list of sales links to the waiting room.
    await page.goto(`${BASE_URL}/`);
    const link = page.locator(`li[data-sale="${SALE_ID}"] h2 a`);
    await link.waitFor();
    const card = await page.locator(`li[data-sale="${SALE_ID}"]`).innerText();
    assert(/On sale/.test(card), `sale card should say On sale, got: ${card}`);
    assert(/2 of 2 available/.test(card), `sale card should show availability, got: ${card}`);
    await shot(page, '01-sales.png');
    await link.click();
    await page.waitForURL(`**/s/${SALE_ID}`);

    const join = page.getByRole('button', { name: 'Join the queue' });
    await join.waitFor();

    // Two other visitors join just before, so this buyer really waits in
    // line: the ticker admits one per second.
    for (let i = 0; i < 2; i++) {
      const r = await api('POST', `/api/v1/sales/${SALE_ID}/queue`);
      assert(r.status === 201, `other visitor join: expected 201, got ${r.status} ${JSON.stringify(r.data)}`);
    }

    await join.click();
    await page.waitForSelector('body[data-view="queue"]');
    const number = Number((await page.locator('#q-number').innerText()).replace(/\D/g, ''));
    assert(number >= 1, `a place in line should show, got ${number}`);
    const live = await page.locator('#q-live').innerText();
    assert(/place in line|next/i.test(live), `the aria-live region should state the place, got: ${live}`);
    assert(await page.locator('#q-live[aria-live="polite"]').count() === 1, 'position region must be aria-live');
    assert(await page.locator('#q-progress').isVisible(), 'progress bar should be visible');
    const focused = await page.evaluate(() => document.activeElement && document.activeElement.id);
    assert(focused === 'queue-title', `focus should move to the queue heading, was on ${focused}`);
    await shot(page, '02-queue.png');
    console.log(`    in line at place ${number}: ${live}`);

    // The token is kept in the browser so a reload keeps the place.
    const stored = await page.evaluate((id) => localStorage.getItem(`floodgate:sale:${id}`), SALE_ID);
    assert(stored && JSON.parse(stored).queue_token, 'queue token should be kept in localStorage');

    // Admitted by the ticker (no admin call anywhere in this test).
    await page.waitForSelector('body[data-view="buy"]', { timeout: 30_000 });
    const options = await page.locator('#qty option').evaluateAll((os) => os.map((o) => o.value));
    assert(options.join(',') === '1,2', `quantity picker should offer 1..2, got ${options}`);
    assert(/\d+:\d\d/.test(await page.locator('#buy-countdown').innerText()), 'admission countdown should show');
    await page.getByLabel('Number of tickets').selectOption('2');
    await shot(page, '03-admitted.png');

    await page.getByRole('button', { name: 'Hold tickets' }).click();
    await page.waitForSelector('body[data-view="hold"]');
    const held = await page.locator('#hold-units li').allInnerTexts();
    assert(held.length === 2, `2 units should be held, got ${held}`);
    const c1 = await page.locator('#hold-countdown').innerText();
    assert(/^[0-5]:\d\d$/.test(c1), `hold countdown should be m:ss under 5 minutes, got ${c1}`);
    await page.waitForTimeout(2100);
    const c2 = await page.locator('#hold-countdown').innerText();
    assert(c2 !== c1, `hold countdown should tick (${c1} then ${c2})`);
    await shot(page, '04-hold.png');
    console.log(`    held ${held.join(', ')}; ${c2} left to pay`);

    // A reload during checkout shows the same hold.
    await page.reload();
    await page.waitForSelector('body[data-view="hold"]');
    const heldAgain = await page.locator('#hold-units li').allInnerTexts();
    assert(heldAgain.join() === held.join(), `after a reload the hold should show again, got ${heldAgain}`);

    await page.getByRole('button', { name: 'Pay (dev checkout)' }).click();
    await page.waitForSelector('body[data-view="order"]');
    await page.waitForSelector('#view-order[data-state="confirmed"]');
    const title = await page.locator('#order-title').innerText();
    assert(title === 'Order confirmed', `order title: ${title}`);
    const units = await page.locator('#order-units li').allInnerTexts();
    assert(units.length === 2, `the order should have 2 units, got ${units}`);
    assert(units.slice().sort().join() === held.slice().sort().join(), `order units ${units} should be the held ${held}`);
    await shot(page, '05-order.png');
    console.log(`    order ${await page.locator('#order-id').innerText()} confirmed: ${units.join(', ')}`);

    // And after a reload the order is still there.
    await page.reload();
    await page.waitForSelector('#view-order[data-state="confirmed"]');
    assert((await page.locator('#order-units li').count()) === 2, 'order should show after a reload');

    assert(errors.length === 0, errors.join('; '));
  } finally {
    await context.close();
  }
});

test('a second buyer is told the sale is sold out', async () => {
  const errors = [];
  const { context, page } = await newPage(browser, errors);
  try {
    await page.goto(`${BASE_URL}/s/${SALE_ID}`);
    // Right after the last sale the sale may still read on_sale for about a
    // second: then the buyer can join, and the page must say sold out anyway.
    const deadline = Date.now() + 30_000;
    let joined = false;
    for (;;) {
      const v = await view(page);
      if (v === 'end') break;
      if (v === 'join' && !joined) {
        await page.getByRole('button', { name: 'Join the queue' }).click();
        joined = true;
      }
      assert(Date.now() < deadline, `no sold-out answer within 30 s (view ${v})`);
      await page.waitForTimeout(200);
    }
    const title = await page.locator('#end-title').innerText();
    const body = await page.locator('#end-text').innerText();
    assert(title === 'Sold out', `expected "Sold out", got "${title}: ${body}"`);
    const meta = await page.locator('#sale-meta').innerText();
    assert(/Sold out/.test(meta), `sale header should say sold out, got: ${meta}`);
    await shot(page, '06-sold-out.png');
    console.log(`    ${joined ? 'joined, then ' : ''}told: ${title}. ${body}`);

    // The API agrees.
    const r = await api('POST', `/api/v1/sales/${SALE_ID}/queue`);
    assert(r.status === 410 && r.data?.error?.code === 'sold_out', `joining now should be 410 sold_out, got ${r.status}`);
    assert(errors.length === 0, errors.join('; '));
  } finally {
    await context.close();
  }
});

async function main() {
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--no-first-run',
    ],
  });
  let passed = 0;
  let failed = 0;
  for (const t of tests) {
    const started = Date.now();
    console.log(`- ${t.name}`);
    try {
      let timer;
      const timeout = new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`timed out after ${TEST_TIMEOUT_MS / 1000} s`)), TEST_TIMEOUT_MS);
      });
      await Promise.race([t.fn(), timeout]).finally(() => clearTimeout(timer));
      passed++;
      console.log(`  ok (${((Date.now() - started) / 1000).toFixed(1)} s)`);
    } catch (err) {
      failed++;
      console.log(`  FAILED (${((Date.now() - started) / 1000).toFixed(1)} s): ${err && err.stack ? err.stack : err}`);
    }
  }
  await browser.close();
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed === 0 ? 0 : 1);
}

main().catch(async (err) => {
  console.error(err);
  if (browser) await browser.close().catch(() => {});
  console.log(`0 passed, ${tests.length} failed`);
  process.exit(1);
});
