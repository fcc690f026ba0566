// Browser test of the buyer pages (issue 7), driven by Debian's Chromium via
// playwright-core. Started by run.sh, which builds and starts the server and
// creates the sale; this file only talks to it over HTTP.
//
//   BASE_URL   http://127.0.0.1:<port> of the running server
//   SALE_ID    a FIFO sale with a waiting room and exactly 2 units
//   OUT_DIR    where screenshots go
//
//   CHALLENGE_BITS  the sale's proof-of-work difficulty (run.sh: the demo sale's)
//
// The sale asks every new place for proof of work (SPEC §4a); the tests
// before the buyer's use mocked answers (page.route) or the worker alone,
// so they take no place in line:
//
// - "Checking your browser…" is shown while the worker solves, accessible
//   (axe, role=status, a named progress bar that moves), the join button
//   disabled.
// - A join refused for its challenge fetches a fresh one and solves again,
//   three times, then says so; 403 access_denied is said at once, with no
//   retry; without WebCrypto the page says what is missing.
// - Five fresh browser contexts solve real challenges of the sale in the
//   worker; the hashing rate at 18 bits is measured with a fixed challenge.
//   Both go to out/pow.json.
//
// Then the buyer (test "buyer joins…"): opens / (axe), follows the sale
// link, joins (solving the sale's challenge in the page), waits in line
// behind two other visitors (who solved theirs in node) until the admission
// ticker lets them in (axe on the waiting view; a reload there keeps the
// place without a new challenge), holds 2, sees the hold's countdown (and
// the hold again after a reload), pays with the dev checkout and sees the
// confirmed order with its 2 units (a sale without prices: no price, no
// category choice, no total anywhere). Then a second buyer, in a separate
// browser context, opens the sale page and is told it is sold out.
//
// Prices (issue 16): a sale priced in EUR is created here through the admin
// API (Early bird €30.00 in stage 1, Regular €45.00 in stage 2, Late €60.00
// in stage 3, stage 3 not released). The list says "From €30.00"; a buyer
// waits in line behind another visitor, is admitted, sees the three
// categories with price and what is left (Late: on sale later, not
// choosable), chooses Regular and 2 tickets ("2 × €45.00 = €90.00"), holds
// them in Regular (the request names the category), sees each unit's
// category and price and the total €90.00 (again after a reload), pays with
// the dev checkout and sees the order's total paid, which the API agrees
// with. axe finds nothing at 390×844 and at 1280×800 on the choice, the
// hold and the order. A reserved-seating sale priced in KWD (three
// decimals) shows its prices as a list beside the seat field, as before,
// and the held seats with their category, price and total.
//
// Sessions (issue 16): a sale of 60 sessions (30 days from tomorrow, 10:00
// and 11:00 in Europe/Amsterdam, 5 tickets each at €25.00) is created
// through the admin API. A buyer whose browser is in Honolulu waits in line,
// is admitted, sees the month of the first session (days with times marked
// with the tickets left, days without them not choosable, no earlier
// month), goes to the next month and back, moves with the arrow key to the
// second day and chooses it with Enter, sees its times in Amsterdam time,
// chooses 11:00–12:00 and 2 tickets (2 × €25.00 = €50.00), holds them (the
// request names the session), sees the day and time on the hold (after a
// reload too, and looked up again once the copy in localStorage is gone),
// pays and sees the order with its day and time. axe finds nothing at
// 390×844 and 1280×800 on the month view, the hold and the order.
//
// Prints one line per test and then "<n> passed, <m> failed"; exits non-zero
// when anything failed.

import { chromium } from 'playwright-core';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { webcrypto } from 'node:crypto';
import path from 'node:path';

import { solve } from '../../web/js/pow.js';
import { addDays, addMonths, dayLabel, monthKey, monthLabel, monthOf, monthRange } from '../../web/js/calendar.js';
import { DESKTOP, checkAxe as checkAxeStrict, http, runTests, until } from './lib.mjs';

const BASE_URL = (process.env.BASE_URL || '').replace(/\/$/, '');
const SALE_ID = process.env.SALE_ID || '';
const OUT_DIR = process.env.OUT_DIR || path.join(path.dirname(new URL(import.meta.url).pathname), 'out');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const CHALLENGE_BITS = Number(process.env.CHALLENGE_BITS || 17);
const TEST_TIMEOUT_MS = 90_000;
const AXE_SOURCE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

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

// The API as a script sees it (lib.mjs's `http`).
const api = http;

/** Joins the sale as another visitor would with a script: fetch a challenge, solve it in node, join. */
async function joinWithChallenge() {
  const c = await api('GET', `/api/v1/sales/${SALE_ID}/challenge`);
  if (c.status !== 200) return c;
  const { nonce } = await solve({ challenge: c.data.challenge, bits: c.data.difficulty_bits, subtle: webcrypto.subtle });
  return api('POST', `/api/v1/sales/${SALE_ID}/queue`, { body: { challenge: c.data.challenge, nonce } });
}

/**
 * Runs axe-core on the page as it is; fails on violations of impact serious
 * or critical, prints the others. axe is evaluated through the DevTools
 * protocol: the pages' Content-Security-Policy (rightly) refuses the inline
 * <script> page.addScriptTag would add.
 */
async function checkAxe(page, label) {
  if (!(await page.evaluate(() => !!window.axe))) await page.evaluate(AXE_SOURCE);
  const result = await page.evaluate(async () => {
    const r = await window.axe.run(document, { resultTypes: ['violations'] });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => n.target.join(' ')) }));
  });
  const bad = result.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  for (const v of result) {
    console.log(`    axe ${label}: ${v.impact} ${v.id} (${v.help}) at ${v.nodes.slice(0, 3).join(', ')}`);
  }
  console.log(`    axe ${label}: ${result.length} violation(s), ${bad.length} serious or critical`);
  assert(bad.length === 0, `axe on ${label}: ${bad.map((v) => `${v.impact} ${v.id}: ${v.help} (${v.nodes.join(', ')})`).join('; ')}`);
}

/** Counts the page's requests for challenges and its joins (with their bodies). */
function watchGate(page) {
  const seen = { challenges: 0, joins: [] };
  page.on('request', (req) => {
    const url = new URL(req.url());
    if (url.pathname === `/api/v1/sales/${SALE_ID}/challenge`) seen.challenges++;
    if (url.pathname === `/api/v1/sales/${SALE_ID}/queue` && req.method() === 'POST') {
      seen.joins.push({ body: req.postData() ? JSON.parse(req.postData()) : null, auth: !!req.headers().authorization });
    }
  });
  return seen;
}

function median(xs) {
  const s = xs.slice().sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** What goes to out/pow.json. */
const powReport = { difficulty_bits: CHALLENGE_BITS };

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

// --- proof of work: the page's side, with mocked refusals --------------------

function fulfillJson(route, status, data) {
  return route.fulfill({ status, contentType: 'application/json', body: JSON.stringify(data) });
}

test('“Checking your browser…” shows while the worker solves: accessible, join disabled, page responsive', async () => {
  const errors = [];
  const { context, page } = await newPage(browser, errors);
  try {
    const gate = watchGate(page);
    // A challenge far too hard to finish, so the check stays on screen.
    await page.route(`**/api/v1/sales/${SALE_ID}/challenge`, (route) => fulfillJson(route, 200, {
      challenge: 'browser-test.' + 'x'.repeat(90), difficulty_bits: 30,
      expires_at: new Date(Date.now() + 120_000).toISOString(),
    }));
    await page.goto(`${BASE_URL}/s/${SALE_ID}`);
    const join = page.getByRole('button', { name: 'Join the queue' });
    await join.click();
    await page.waitForSelector('body[data-check="solving"]');
    const status = page.getByRole('status').filter({ hasText: 'Checking your browser' });
    await status.waitFor();
    assert(/takes a moment/.test(await status.innerText()), `the status should say it takes a moment: ${await status.innerText()}`);
    assert(await join.isDisabled(), 'the join button should be disabled while solving');
    const bar = page.getByRole('progressbar', { name: 'Browser check' });
    await bar.waitFor();
    await page.waitForTimeout(1000);
    const before = await bar.getAttribute('aria-valuetext');
    // The page stays responsive while the worker hashes: animation frames
    // keep coming.
    const frames = await page.evaluate(() => new Promise((resolve) => {
      let n = 0;
      const t0 = performance.now();
      const step = () => (performance.now() - t0 < 1000 ? (n++, requestAnimationFrame(step)) : resolve(n));
      requestAnimationFrame(step);
    }));
    const after = await bar.getAttribute('aria-valuetext');
    assert(/^[\d,]+ of about 1,073,741,824 checks$/.test(after), `progress should say attempts of expected, got ${after}`);
    const count = (t) => Number(t.split(' of ')[0].replace(/,/g, ''));
    assert(count(after) > count(before), `progress should move: ${before} then ${after}`);
    assert(frames >= 10, `the page should keep painting while solving, got ${frames} frames in 1 s`);
    await shot(page, 'pow-1-checking.png');
    console.log(`    checking: "${await status.innerText()}", ${after}; ${frames} frames/s while solving`);
    await checkAxe(page, 'the browser check');
    assert(gate.joins.length === 0, 'no join before the check is done');
    assert(errors.length === 0, errors.join('; '));
  } finally {
    await context.close();
  }
});

test('a join refused for its challenge solves a fresh one, three times, then says so', async () => {
  const errors = [];
  const { context, page } = await newPage(browser, errors);
  try {
    const gate = watchGate(page);
    const codes = ['challenge_expired', 'challenge_reused', 'challenge_failed'];
    let refused = 0;
    await page.route(`**/api/v1/sales/${SALE_ID}/queue`, (route) => {
      if (route.request().method() !== 'POST') return route.continue();
      const code = codes[refused++ % codes.length];
      return fulfillJson(route, code === 'challenge_reused' ? 409 : 403, { error: { code, message: 'test refusal' } });
    });
    await page.goto(`${BASE_URL}/s/${SALE_ID}`);
    await page.getByRole('button', { name: 'Join the queue' }).click();
    await page.locator('#alert').filter({ hasText: 'could not be checked' }).waitFor();
    await page.waitForTimeout(500); // no fourth try
    assert(gate.challenges === 3 && gate.joins.length === 3, `3 challenges and 3 joins, got ${gate.challenges} and ${gate.joins.length}`);
    const used = new Set(gate.joins.map((j) => j.body && j.body.challenge));
    assert(used.size === 3 && !used.has(undefined), 'each try should join with a fresh challenge');
    assert(await view(page) === 'join', `the page should stay on the join view, is on ${await view(page)}`);
    assert(await page.getByRole('button', { name: 'Join the queue' }).isEnabled(), 'the join button should work again');
    await shot(page, 'pow-2-refused.png');
    console.log(`    refused ${refused} times, solved ${gate.challenges} challenges, then: ${await page.locator('#alert').innerText()}`);
    assert(errors.length === 0, errors.join('; '));
  } finally {
    await context.close();
  }
});

test('a sale whose view says difficulty 0 is joined without a challenge, until one is required', async () => {
  const errors = [];
  const { context, page } = await newPage(browser, errors);
  try {
    const gate = watchGate(page);
    await page.route(`**/api/v1/sales/${SALE_ID}`, async (route) => {
      const res = await route.fetch();
      const sale = await res.json();
      sale.challenge = { difficulty_bits: 0, max_difficulty_bits: 0 };
      return route.fulfill({ response: res, json: sale });
    });
    // The first join (no challenge) is refused: the sale turned the check on
    // meanwhile. The second must carry a solved one; it is answered sold out
    // so this test takes no place in line.
    let posts = 0;
    await page.route(`**/api/v1/sales/${SALE_ID}/queue`, (route) => {
      if (route.request().method() !== 'POST') return route.continue();
      if (++posts === 1) {
        return fulfillJson(route, 403, { error: { code: 'challenge_required', message: 'this sale asks for a solved challenge' } });
      }
      return fulfillJson(route, 410, { error: { code: 'sold_out', message: 'sold out' } });
    });
    await page.goto(`${BASE_URL}/s/${SALE_ID}`);
    await page.getByRole('button', { name: 'Join the queue' }).click();
    await page.waitForSelector('body[data-view="end"]');
    assert(gate.joins.length === 2, `two joins, got ${gate.joins.length}`);
    assert(gate.joins[0].body === null, `the first join should carry no challenge, got ${JSON.stringify(gate.joins[0].body)}`);
    assert(gate.joins[1].body?.challenge && gate.joins[1].body?.nonce, `the second join should carry a solution, got ${JSON.stringify(gate.joins[1].body)}`);
    assert(gate.challenges === 1, `one challenge, fetched after the refusal; got ${gate.challenges}`);
    assert((await page.locator('#end-title').innerText()) === 'Sold out', 'the mocked sold-out answer should show');
    console.log(`    joined without a challenge, was told challenge_required, solved ${await page.evaluate(() => document.body.dataset.solveBits)} bits, joined again`);
    assert(errors.length === 0, errors.join('; '));
  } finally {
    await context.close();
  }
});

test('where a module worker cannot start, the page solves in the page itself', async () => {
  const errors = [];
  const { context, page } = await newPage(browser, errors);
  try {
    const gate = watchGate(page);
    // Workers that fail to load, as in a browser without module workers.
    await page.addInitScript(() => {
      const RealWorker = window.Worker;
      window.Worker = function Worker() { return new RealWorker('/static/js/no-such-worker.js', { type: 'module' }); };
    });
    await page.route(`**/api/v1/sales/${SALE_ID}/queue`, (route) => route.request().method() === 'POST'
      ? fulfillJson(route, 410, { error: { code: 'sold_out', message: 'sold out' } })
      : route.continue());
    await page.goto(`${BASE_URL}/s/${SALE_ID}`);
    await page.getByRole('button', { name: 'Join the queue' }).click();
    await page.waitForSelector('body[data-view="end"]');
    const d = await page.evaluate(() => ({ ...document.body.dataset }));
    assert(d.solveWhere === 'page', `solved in the ${d.solveWhere}, expected the page`);
    assert(gate.joins.length === 1 && gate.joins[0].body?.nonce, `one join with a solution, got ${JSON.stringify(gate.joins)}`);
    console.log(`    solved ${d.solveBits} bits in the page in ${d.solveMs} ms (${d.solveAttempts} hashes)`);
    assert(errors.length === 0, errors.join('; '));
  } finally {
    await context.close();
  }
});

test('a place an admin removed is said so, and polling stops', async () => {
  const errors = [];
  const { context, page } = await newPage(browser, errors);
  try {
    let polls = 0;
    // Mocked answers: the join (after a real solve) and then a status that
    // says removed; nothing reaches the sale's line.
    await page.route(`**/api/v1/sales/${SALE_ID}/queue`, (route) => route.request().method() === 'POST'
      ? fulfillJson(route, 201, { queue_token: 'mock-token', state: 'waiting', position: 5, ahead: 4, estimated_wait_seconds: 30, poll_after_ms: 1000 })
      : route.continue());
    await page.route(`**/api/v1/sales/${SALE_ID}/queue/status`, (route) => {
      polls++;
      return fulfillJson(route, 200, { state: 'removed', position: null, ahead: null, estimated_wait_seconds: null, poll_after_ms: 1000 });
    });
    await page.goto(`${BASE_URL}/s/${SALE_ID}`);
    await page.getByRole('button', { name: 'Join the queue' }).click();
    await page.waitForSelector('body[data-view="queue"]');
    await page.waitForSelector('body[data-view="end"]', { timeout: 10_000 });
    const title = await page.locator('#end-title').innerText();
    assert(title === 'Your place was removed', `title: ${title}`);
    const seen = polls;
    await page.waitForTimeout(2500);
    assert(polls === seen, `polling should stop after removed (${seen} then ${polls})`);
    console.log(`    told: ${title}. ${await page.locator('#end-text').innerText()}`);
    assert(errors.length === 0, errors.join('; '));
  } finally {
    await context.close();
  }
});

test('403 access_denied is said plainly, with no retry', async () => {
  const errors = [];
  const { context, page } = await newPage(browser, errors);
  try {
    const gate = watchGate(page);
    await page.route(`**/api/v1/sales/${SALE_ID}/challenge`, (route) =>
      fulfillJson(route, 403, { error: { code: 'access_denied', message: 'your network may not join this sale' } }));
    await page.goto(`${BASE_URL}/s/${SALE_ID}`);
    await page.getByRole('button', { name: 'Join the queue' }).click();
    await page.waitForSelector('body[data-view="end"]');
    const title = await page.locator('#end-title').innerText();
    const body = await page.locator('#end-text').innerText();
    assert(/network can’t join/.test(title), `title: ${title}`);
    assert(/not possible from your network/.test(body), `text: ${body}`);
    await page.waitForTimeout(1500);
    assert(gate.challenges === 1 && gate.joins.length === 0, `no retry: ${gate.challenges} challenges, ${gate.joins.length} joins`);
    assert(!(await page.locator('#end-btn').isVisible()), 'no button that would try again');
    await shot(page, 'pow-3-denied.png');
    console.log(`    told: ${title}. ${body}`);
    assert(errors.length === 0, errors.join('; '));
  } finally {
    await context.close();
  }
});

test('without WebCrypto (not a secure context) the page says what is missing', async () => {
  const errors = [];
  const { context, page } = await newPage(browser, errors);
  try {
    const gate = watchGate(page);
    await page.addInitScript(() => {
      Object.defineProperty(Crypto.prototype, 'subtle', { get() { return undefined; }, configurable: true });
    });
    await page.goto(`${BASE_URL}/s/${SALE_ID}`);
    await page.getByRole('button', { name: 'Join the queue' }).click();
    const alert = page.locator('#alert').filter({ hasText: 'secure (https)' });
    await alert.waitFor();
    assert(gate.joins.length === 0, 'no join without a solution');
    assert(await page.getByRole('button', { name: 'Join the queue' }).isEnabled(), 'the join button should work again');
    console.log(`    told: ${await alert.innerText()}`);
    assert(errors.length === 0, errors.join('; '));
  } finally {
    await context.close();
  }
});

test('the worker solves the sale’s challenges in fresh contexts; hashing rate at 18 bits', async () => {
  const { createHash } = await import('node:crypto');
  const { leadingZeroBits } = await import('../../web/js/pow.js');
  const solves = [];
  for (let i = 0; i < 5; i++) {
    const errors = [];
    const { context, page } = await newPage(browser, errors);
    try {
      await page.goto(`${BASE_URL}/s/${SALE_ID}`);
      await page.waitForSelector('body[data-view="join"]');
      const r = await page.evaluate(async (saleId) => {
        const { startSolving } = await import('/static/js/pow-client.js');
        const c = await (await fetch(`/api/v1/sales/${saleId}/challenge`, { cache: 'no-store' })).json();
        const found = await startSolving({ challenge: c.challenge, bits: c.difficulty_bits }).promise;
        return { challenge: c.challenge, bits: c.difficulty_bits, ...found };
      }, SALE_ID);
      const zeros = leadingZeroBits(createHash('sha256').update(`${r.challenge}:${r.nonce}`).digest());
      assert(zeros >= r.bits, `nonce ${r.nonce} gives ${zeros} zero bits, ${r.bits} asked`);
      assert(r.where === 'worker', `solved in the ${r.where}, expected the worker`);
      solves.push({ bits: r.bits, ms: Math.round(r.ms), attempts: r.attempts });
      assert(errors.length === 0, errors.join('; '));
    } finally {
      await context.close();
    }
  }
  powReport.solve_ms = solves.map((x) => x.ms);
  powReport.solves = solves;
  powReport.median_ms = median(powReport.solve_ms);
  console.log(`    ${solves.length} solves at ${[...new Set(solves.map((x) => x.bits))].join('/')} bits: ` +
    `${powReport.solve_ms.join(', ')} ms (median ${powReport.median_ms} ms); hashes ${solves.map((x) => x.attempts).join(', ')}`);

  // The rate: fixed challenges at 18 bits (attempts / seconds, worker start
  // included), and the steady rate of a search that never ends, for 3 s.
  const errors = [];
  const { context, page } = await newPage(browser, errors);
  try {
    await page.goto(`${BASE_URL}/s/${SALE_ID}`);
    await page.waitForSelector('body[data-view="join"]');
    const rate = await page.evaluate(async () => {
      const { startSolving, workerCount } = await import('/static/js/pow-client.js');
      const fixed = [];
      for (let i = 0; i < 3; i++) {
        const found = await startSolving({ challenge: `rate-test-${i}.` + 'x'.repeat(90), bits: 18 }).promise;
        fixed.push({ attempts: found.attempts, ms: Math.round(found.ms) });
      }
      const steady = {};
      for (const workers of [1, 2]) {
        let attempts = 0;
        const s = startSolving({ challenge: 'steady.' + 'x'.repeat(90), bits: 200, workers, onProgress: (n) => { attempts = n; } });
        s.promise.catch(() => {});
        await new Promise((r) => setTimeout(r, 500));
        const a0 = attempts;
        const t0 = performance.now();
        await new Promise((r) => setTimeout(r, 3000));
        steady[workers] = Math.round(((attempts - a0) * 1000) / (performance.now() - t0));
        s.cancel();
      }
      return { workers: workerCount(), cores: navigator.hardwareConcurrency, fixed, steady };
    });
    const attempts = rate.fixed.reduce((a, x) => a + x.attempts, 0);
    const ms = rate.fixed.reduce((a, x) => a + x.ms, 0);
    powReport.hash_rate = {
      cores: rate.cores,
      workers: rate.workers,
      at_18_bits: rate.fixed,
      at_18_bits_per_second: Math.round((attempts * 1000) / ms),
      steady_per_second: rate.steady,
    };
    console.log(`    18 bits, fixed challenges (${rate.workers} workers, ${rate.cores} cores): ` +
      rate.fixed.map((x) => `${x.attempts} hashes in ${x.ms} ms`).join(', ') +
      ` = ${powReport.hash_rate.at_18_bits_per_second} hashes/s; steady: 1 worker ${rate.steady[1]}/s, 2 workers ${rate.steady[2]}/s`);
    assert(errors.length === 0, errors.join('; '));
  } finally {
    await context.close();
  }
});

test('buyer joins, is admitted by the ticker, holds 2, pays and sees the order', async () => {
  const errors = [];
  const { context, page } = await newPage(browser, errors);
  try {
    const gate = watchGate(page);
    // The list of sales links to the waiting room.
    await page.goto(`${BASE_URL}/`);
    const link = page.locator(`li[data-sale="${SALE_ID}"] h2 a`);
    await link.waitFor();
    const card = await page.locator(`li[data-sale="${SALE_ID}"]`).innerText();
    assert(/On sale/.test(card), `sale card should say On sale, got: ${card}`);
    assert(/2 of 2 available/.test(card), `sale card should show availability, got: ${card}`);
    await shot(page, '01-sales.png');
    await checkAxe(page, 'the sales list');
    await link.click();
    await page.waitForURL(`**/s/${SALE_ID}`);

    const join = page.getByRole('button', { name: 'Join the queue' });
    await join.waitFor();

    // Two other visitors join just before, so this buyer really waits in
    // line: the ticker admits one per second.
    // A script joining without a challenge is refused.
    const bare = await api('POST', `/api/v1/sales/${SALE_ID}/queue`);
    assert(bare.status === 403 && bare.data?.error?.code === 'challenge_required',
      `a join without a challenge: expected 403 challenge_required, got ${bare.status} ${JSON.stringify(bare.data)}`);
    for (let i = 0; i < 2; i++) {
      const r = await joinWithChallenge();
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

    // The page solved the sale's challenge before joining, and joined with it.
    const solved = await page.evaluate(() => ({ ...document.body.dataset }));
    assert(gate.challenges === 1, `one challenge should have been fetched, got ${gate.challenges}`);
    assert(gate.joins.length === 1 && gate.joins[0].body?.challenge && gate.joins[0].body?.nonce,
      `the join should carry {challenge, nonce}, got ${JSON.stringify(gate.joins)}`);
    assert(Number(solved.solveBits) === CHALLENGE_BITS, `solved at ${solved.solveBits} bits, expected ${CHALLENGE_BITS}`);
    assert(Number(solved.solveMs) >= 0, `the solve time should be recorded, got ${solved.solveMs}`);
    powReport.page_solve = { ms: Number(solved.solveMs), attempts: Number(solved.solveAttempts), bits: Number(solved.solveBits) };
    console.log(`    the page solved ${solved.solveBits} bits in ${solved.solveMs} ms (${solved.solveAttempts} hashes) before joining`);
    if ((await view(page)) === 'queue') await checkAxe(page, 'the waiting view');

    // The token is kept in the browser so a reload keeps the place.
    const stored = await page.evaluate((id) => localStorage.getItem(`floodgate:sale:${id}`), SALE_ID);
    assert(stored && JSON.parse(stored).queue_token, 'queue token should be kept in localStorage');

    // A reload with the stored token keeps the place and solves nothing.
    await page.reload();
    await page.waitForSelector('body[data-view="queue"], body[data-view="buy"]');
    const storedAgain = await page.evaluate((id) => localStorage.getItem(`floodgate:sale:${id}`), SALE_ID);
    assert(JSON.parse(storedAgain).queue_token === JSON.parse(stored).queue_token, 'the reload should keep the queue token');
    assert(gate.challenges === 1, `a reload with the stored token should fetch no challenge, got ${gate.challenges} in all`);
    assert(!(await page.evaluate(() => document.body.dataset.solveMs)), 'a reload with the stored token should not solve');
    console.log(`    after a reload: ${await view(page)} view, same token, no new challenge`);

    // Admitted by the ticker (no admin call anywhere in this test).
    await page.waitForSelector('body[data-view="buy"]', { timeout: 30_000 });
    const options = await page.locator('#qty option').evaluateAll((os) => os.map((o) => o.value));
    assert(options.join(',') === '1,2', `quantity picker should offer 1..2, got ${options}`);
    assert(!(await page.locator('#cat-field').isVisible()) && !(await page.locator('#buy-estimate').isVisible()),
      'a sale without prices offers no category and no price');
    assert(/\d+:\d\d/.test(await page.locator('#buy-countdown').innerText()), 'admission countdown should show');
    await page.getByLabel('Number of tickets').selectOption('2');
    await shot(page, '03-admitted.png');

    await page.getByRole('button', { name: 'Hold tickets' }).click();
    await page.waitForSelector('body[data-view="hold"]');
    const held = await page.locator('#hold-units li').allInnerTexts();
    assert(held.length === 2, `2 units should be held, got ${held}`);
    assert(!(await page.locator('#hold-total').isVisible()), 'a hold without prices shows no total');
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
    assert(!(await page.locator('#order-total').isVisible()), 'an order without prices shows no total');
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
    const r = await joinWithChallenge();
    assert(r.status === 410 && r.data?.error?.code === 'sold_out', `joining now should be 410 sold_out, got ${r.status}`);
    assert(errors.length === 0, errors.join('; '));
  } finally {
    await context.close();
  }
});

// --- prices ------------------------------------------------------------------------

/** Both sizes: axe (every violation fails) and a screenshot at 390×844 and at 1280×800. */
async function bothSizes(page, label, file) {
  await checkAxeStrict(page, `${label} (390×844)`);
  await shot(page, `${file}-phone.png`);
  await page.setViewportSize(DESKTOP.viewport);
  await checkAxeStrict(page, `${label} (1280×800)`);
  await shot(page, `${file}-desktop.png`);
  await page.setViewportSize(PHONE.viewport);
}

test('a priced sale: the buyer chooses a category, sees each unit’s price and the total, pays, sees the total paid', async () => {
  const created = await http('POST', '/admin/v1/sales', {
    admin: true,
    body: {
      name: 'Browser test priced sale',
      units: { count: 10 },
      stages: [30, 30, 40],
      per_user_limit: 2,
      hold_ttl_seconds: 300,
      shuffle_prequeue: false,
      challenge: { difficulty_bits: 0 },
      admission: { admit_per_second: 1, max_active: 3, admission_ttl_seconds: 120, abandon_after_seconds: 60 },
      prices: {
        currency: 'EUR',
        categories: [
          { name: 'Early bird', amount: 3000, stages: [1] },
          { name: 'Regular', amount: 4500, stages: [2] },
          { name: 'Late', amount: 6000, stages: [3] },
        ],
      },
    },
  });
  assert(created.status === 201, `create the priced sale: ${created.status} ${JSON.stringify(created.data)}`);
  const saleId = created.data.id;
  assert(created.data.currency === 'EUR', `currency: ${created.data.currency}`);
  const next = await http('POST', `/admin/v1/sales/${saleId}/stages/next`, { admin: true });
  assert(next.status === 200, `release stage 2: ${next.status} ${JSON.stringify(next.data)}`);

  const errors = [];
  const { context, page } = await newPage(browser, errors);
  const holdBodies = [];
  page.on('request', (req) => {
    if (req.method() === 'POST' && new URL(req.url()).pathname === `/api/v1/sales/${saleId}/holds`) holdBodies.push(JSON.parse(req.postData()));
  });
  try {
    // The list: the lowest price on offer.
    await page.goto(`${BASE_URL}/`);
    const card = page.locator(`li[data-sale="${saleId}"]`);
    await card.waitFor();
    const price = await card.locator('.price-from').innerText();
    assert(price === 'From €30.00', `the card should say From €30.00, got ${price}`);
    await card.locator('h2 a').click();
    await page.waitForURL(`**/s/${saleId}`);
    const meta = await until(async () => {
      const t = await page.locator('#sale-meta').innerText();
      return t.trim() ? t : null;
    }, 10_000, 'the sale’s header');
    assert(/From €30\.00/.test(meta), `the sale's header should say From €30.00: ${meta}`);

    // Another visitor first, so the buyer waits in line (1 admission a second).
    const other = await http('POST', `/api/v1/sales/${saleId}/queue`);
    assert(other.status === 201, `the other visitor joins: ${other.status}`);
    await page.getByRole('button', { name: 'Join the queue' }).click();
    await page.waitForSelector('body[data-view="queue"], body[data-view="buy"]');
    console.log(`    joined: ${await view(page)} view`);
    await page.waitForSelector('body[data-view="buy"]', { timeout: 30_000 });

    // Three categories; Late is not released, so it cannot be chosen.
    const group = page.getByRole('group', { name: 'Price category' });
    await group.waitFor();
    const early = group.getByRole('radio', { name: /Early bird/ });
    const regular = group.getByRole('radio', { name: /Regular/ });
    const late = group.getByRole('radio', { name: /Late/ });
    // The view refreshes the sale once on admission: wait for its counts.
    await until(async () => /3 left/.test(await page.locator('#cat-options label[data-category="Regular"]').innerText()), 10_000, 'Regular: 3 left');
    const labels = await page.locator('#cat-options label').allInnerTexts();
    console.log(`    categories: ${labels.map((l) => l.replace(/\s+/g, ' ')).join(' | ')}`);
    assert(/Early bird\s*€30\.00\s*3 left/.test(labels[0]), `Early bird: ${labels[0]}`);
    assert(/Regular\s*€45\.00\s*3 left/.test(labels[1]), `Regular: ${labels[1]}`);
    assert(/Late\s*€60\.00\s*on sale later/.test(labels[2]), `Late: ${labels[2]}`);
    assert(await early.isChecked(), 'the first category with tickets is chosen to start with');
    assert(await late.isDisabled(), 'an unreleased category cannot be chosen');
    assert(/€30\.00/.test(await page.locator('#buy-estimate').innerText()), 'the estimate follows the chosen category');

    await regular.check();
    await page.getByLabel('Number of tickets').selectOption('2');
    const estimate = await page.locator('#buy-estimate').innerText();
    assert(estimate === 'Regular: 2 × €45.00 = €90.00', `estimate: ${estimate}`);
    assert(/\d+:\d\d/.test(await page.locator('#buy-countdown').innerText()), 'the admission countdown still shows');
    await bothSizes(page, 'the category choice', '07-priced-choice');

    // Hold 2 in Regular.
    await page.getByRole('button', { name: 'Hold tickets' }).click();
    await page.waitForSelector('body[data-view="hold"]');
    assert(holdBodies.length === 1 && holdBodies[0].category === 'Regular' && holdBodies[0].quantity === 2,
      `the hold should ask for 2 in Regular: ${JSON.stringify(holdBodies)}`);
    const held = await page.locator('#hold-units li').allInnerTexts();
    assert(held.length === 2, `2 units held: ${held}`);
    for (const u of held) assert(/Regular · €45\.00/.test(u), `each unit shows its category and price: ${u}`);
    const total = await page.locator('#hold-total').innerText();
    assert(/^Total\s+€90\.00$/.test(total), `the hold's total: ${total}`);
    assert(/^[0-5]:\d\d$/.test(await page.locator('#hold-countdown').innerText()), 'the hold countdown shows');
    console.log(`    held ${held.map((u) => u.replace(/\s+/g, ' ')).join(', ')}; ${total.replace(/\s+/g, ' ')}`);
    await bothSizes(page, 'the priced hold', '08-priced-hold');

    // Units of stage 2 (ids 4..6), at the price the API quoted.
    const stored = JSON.parse(await page.evaluate((id) => localStorage.getItem(`floodgate:sale:${id}`), saleId)).hold;
    const fromApi = await http('GET', `/api/v1/holds/${stored.id}`, { token: stored.hold_token });
    assert(fromApi.data.total.amount === 9000 && fromApi.data.total.currency === 'EUR', `API total: ${JSON.stringify(fromApi.data.total)}`);
    assert(fromApi.data.units.every((u) => u.category === 'Regular' && u.price === 4500 && Number(u.id) >= 4 && Number(u.id) <= 6),
      `API units: ${JSON.stringify(fromApi.data.units)}`);

    // A reload shows the same hold with its prices.
    await page.reload();
    await page.waitForSelector('body[data-view="hold"]');
    assert(/€90\.00/.test(await page.locator('#hold-total').innerText()), 'the total after a reload');
    assert((await page.locator('#hold-units li').allInnerTexts()).join() === held.join(), 'the same units after a reload');

    await page.getByRole('button', { name: 'Pay (dev checkout)' }).click();
    await page.waitForSelector('#view-order[data-state="confirmed"]');
    const paid = await page.locator('#order-total').innerText();
    assert(/^Total paid\s+€90\.00$/.test(paid), `the order's total: ${paid}`);
    const units = await page.locator('#order-units li').allInnerTexts();
    assert(units.length === 2 && units.every((u) => /Regular · €45\.00/.test(u)), `order units: ${units}`);
    const orderId = await page.locator('#order-id').innerText();
    const order = await http('GET', `/api/v1/orders/${orderId}`, { token: stored.hold_token });
    assert(order.data.total.amount === 9000 && order.data.total.currency === 'EUR', `API order total: ${JSON.stringify(order.data.total)}`);
    console.log(`    order ${orderId}: ${paid.replace(/\s+/g, ' ')}`);
    await bothSizes(page, 'the priced order', '09-priced-order');

    await page.reload();
    await page.waitForSelector('#view-order[data-state="confirmed"]');
    assert(/Total paid\s+€90\.00/.test(await page.locator('#order-total').innerText()), 'the total paid after a reload');
    assert(errors.length === 0, errors.join('; '));
  } finally {
    await context.close();
  }
});

test('a reserved-seating sale priced in KWD (3 decimals): the price list, the seats’ categories and the total', async () => {
  const created = await http('POST', '/admin/v1/sales', {
    admin: true,
    body: {
      name: 'Browser test seats in KWD',
      units: { sections: [{ name: 'A', rows: 2, seats_per_row: 3 }, { name: 'B', rows: 1, seats_per_row: 4 }] },
      per_user_limit: 4,
      challenge: { difficulty_bits: 0 },
      admission: { admit_per_second: 5, max_active: 5, admission_ttl_seconds: 120, abandon_after_seconds: 60 },
      prices: { currency: 'KWD', categories: [{ name: 'Front', amount: 12500, sections: ['A'] }, { name: 'Back', amount: 7250, sections: ['B'] }] },
    },
  });
  assert(created.status === 201, `create the reserved sale: ${created.status} ${JSON.stringify(created.data)}`);
  const saleId = created.data.id;
  const errors = [];
  const { context, page } = await newPage(browser, errors);
  try {
    await page.goto(`${BASE_URL}/s/${saleId}`);
    await page.getByRole('button', { name: 'Join the queue' }).click();
    await page.waitForSelector('body[data-view="buy"]', { timeout: 30_000 });
    // The seats decide the category: a price list to read, no choice.
    assert(!(await page.locator('#cat-field').isVisible()), 'no category choice for reserved seating');
    assert(await page.getByLabel('Seats').isVisible(), 'the seat field as before');
    const table = page.getByRole('table', { name: 'Prices' });
    await table.waitFor();
    const rows = (await table.locator('tbody tr').allInnerTexts()).map((r) => r.split('\t').map((c) => c.trim()));
    console.log(`    price list: ${rows.map((r) => r.join(' | ')).join('; ')}`);
    assert(rows.length === 2 && rows[0][0] === 'Front' && /^KWD\s1[2]\.500$/.test(rows[0][1]) && rows[0][2] === '6 left',
      `Front: ${JSON.stringify(rows[0])}`);
    assert(rows[1][0] === 'Back' && /^KWD\s7\.250$/.test(rows[1][1]) && rows[1][2] === '4 left', `Back: ${JSON.stringify(rows[1])}`);
    await bothSizes(page, 'the reserved price list', '10-seats-prices');

    await page.getByLabel('Seats').fill('A/1/1, B/1/2');
    await page.getByRole('button', { name: 'Hold tickets' }).click();
    await page.waitForSelector('body[data-view="hold"]');
    const held = (await page.locator('#hold-units li').allInnerTexts()).map((u) => u.replace(/\s+/g, ' '));
    assert(held.join(' | ') === 'A/1/1 Front · KWD 12.500 | B/1/2 Back · KWD 7.250', `held: ${held.join(' | ')}`);
    const total = (await page.locator('#hold-total').innerText()).replace(/\s+/g, ' ');
    assert(total === 'Total KWD 19.750', `total: ${total}`);
    console.log(`    held ${held.join(', ')}; ${total}`);
    await checkAxeStrict(page, 'the reserved hold');
    await page.getByRole('button', { name: 'Release' }).click();
    await page.waitForSelector('body[data-view="end"]');
    assert(errors.length === 0, errors.join('; '));
  } finally {
    await context.close();
  }
});

// --- sessions (timed entry) --------------------------------------------------------

test('a sale with sessions: the buyer picks a day in the month view and a time, holds 2, pays, sees the time on the hold and the order', async () => {
  // 30 days from tomorrow, 10:00–11:00 and 11:00–12:00 in Amsterdam, 5 tickets each at €25.00.
  const first = addDays(new Date().toISOString().slice(0, 10), 1);
  const last = addDays(first, 29);
  const created = await http('POST', '/admin/v1/sales', {
    admin: true,
    body: {
      name: 'Browser test timed entry',
      units: { count: 5 },
      per_user_limit: 4,
      hold_ttl_seconds: 300,
      shuffle_prequeue: false,
      challenge: { difficulty_bits: 0 },
      admission: { admit_per_second: 1, max_active: 3, admission_ttl_seconds: 300, abandon_after_seconds: 60 },
      prices: { currency: 'EUR', categories: [{ name: 'Standard', amount: 2500 }] },
      sessions: { time_zone: 'Europe/Amsterdam', recurrence: { from: first, to: last, start: '10:00', end: '12:00', every_minutes: 60 } },
    },
  });
  assert(created.status === 201, `create the sale with sessions: ${created.status} ${JSON.stringify(created.data)}`);
  const saleId = created.data.id;
  assert(created.data.session_count === 60 && created.data.availability.total === 300 && created.data.time_zone === 'Europe/Amsterdam',
    `60 sessions of 5: ${created.data.session_count}, ${created.data.availability.total}, ${created.data.time_zone}`);
  // The day the buyer picks (one step right of the first with the keyboard) and its 11:00 session.
  const day = addDays(first, 1);
  const { from, to } = monthRange(monthOf(day));
  const cal = await http('GET', `/api/v1/sales/${saleId}/sessions?from=${from}&to=${to}&limit=500`);
  const slot = cal.data.sessions.find((x) => x.starts_at_local.startsWith(`${day}T11:00`));
  assert(slot, `the 11:00 session of ${day}: ${JSON.stringify(cal.data.sessions.slice(0, 3))}`);

  const errors = [];
  // Far from Amsterdam (10:00 there is 23:00 the day before in Honolulu): the page shows the sale's dates and times.
  const context = await browser.newContext({ ...PHONE, timezoneId: 'Pacific/Honolulu' });
  const page = await context.newPage();
  page.setDefaultTimeout(20_000);
  watchErrors(page, errors);
  const holdBodies = [];
  page.on('request', (req) => {
    if (req.method() === 'POST' && new URL(req.url()).pathname === `/api/v1/sales/${saleId}/holds`) holdBodies.push(JSON.parse(req.postData()));
  });
  try {
    // Another visitor first, so the buyer waits in line (1 admission a second).
    const other = await http('POST', `/api/v1/sales/${saleId}/queue`);
    assert(other.status === 201, `the other visitor joins: ${other.status}`);
    await page.goto(`${BASE_URL}/s/${saleId}`);
    const meta = await until(async () => {
      const t = await page.locator('#sale-meta').innerText();
      return t.trim() ? t : null;
    }, 10_000, 'the sale’s header');
    assert(/60 time slots/.test(meta) && /€25\.00/.test(meta), `the header says the time slots and the price: ${meta}`);
    await page.getByRole('button', { name: 'Join the queue' }).click();
    await page.waitForSelector('body[data-view="buy"]', { timeout: 30_000 });

    // The month of the first session, its days marked.
    const firstMonth = monthOf(first);
    await page.waitForSelector(`body[data-calendar="${monthKey(firstMonth)}"]`);
    const grid = page.getByRole('grid', { name: monthLabel(firstMonth, 'en-US') });
    await grid.waitFor();
    const firstBtn = grid.locator(`button[data-date="${first}"]`);
    await until(async () => /2 times, 10 left$/.test(await firstBtn.getAttribute('aria-label')), 10_000, 'the first day: 2 times, 10 left');
    assert((await firstBtn.getAttribute('aria-label')).startsWith(dayLabel(first, 'en-US')), `the day's name: ${await firstBtn.getAttribute('aria-label')}`);
    assert((await firstBtn.innerText()).trim() === String(Number(first.slice(8))) && (await firstBtn.getAttribute('data-mark')) === '10',
      `the day shows its number and the tickets left: ${await firstBtn.innerText()} ${await firstBtn.getAttribute('data-mark')}`);
    assert(await page.getByRole('button', { name: 'Previous month' }).isDisabled(), 'no earlier month with times');
    const closedDay = grid.locator('button.cal-day[aria-disabled="true"]').first();
    if (await closedDay.count()) {
      const label = await closedDay.getAttribute('aria-label');
      assert(/no times$/.test(label), `a day without times: ${label}`);
      assert(await closedDay.isDisabled(), 'a day without times cannot be chosen');
      await closedDay.click({ force: true });
      assert((await closedDay.getAttribute('aria-pressed')) === 'false' && await page.locator('#slot-field').isHidden(), 'clicking it chooses nothing');
    }
    // The next month and back.
    await page.getByRole('button', { name: 'Next month' }).click();
    await page.waitForSelector(`body[data-calendar="${monthKey(addMonths(firstMonth, 1))}"]`);
    await page.getByRole('grid', { name: monthLabel(addMonths(firstMonth, 1), 'en-US') }).waitFor();
    await page.getByRole('button', { name: 'Previous month' }).click();
    await page.waitForSelector(`body[data-calendar="${monthKey(firstMonth)}"]`);

    // Keyboard: the grid is one tab stop (the first day with times); the arrow moves, Enter chooses.
    const stop = page.locator('#cal-grid button[tabindex="0"]');
    assert((await stop.count()) === 1 && (await stop.getAttribute('data-date')) === first, `one tab stop, on ${first}`);
    await stop.focus();
    await page.keyboard.press('ArrowRight');
    await until(async () => (await page.evaluate(() => document.activeElement && document.activeElement.dataset.date)) === day, 10_000, `focus on ${day}`);
    await page.keyboard.press('Enter');
    const dayBtn = page.locator(`#cal-grid button[data-date="${day}"]`);
    await until(async () => (await dayBtn.getAttribute('aria-pressed')) === 'true', 10_000, `${day} chosen`);

    // Its times, in Amsterdam time.
    const times = page.getByRole('group', { name: `Times on ${dayLabel(day, 'en-US')}` });
    await times.waitFor();
    const labels = (await times.locator('label').allInnerTexts()).map((t) => t.replace(/\s+/g, ' ').trim());
    assert(JSON.stringify(labels) === JSON.stringify(['10:00–11:00 5 left', '11:00–12:00 5 left']), `the day's times: ${JSON.stringify(labels)}`);
    assert(/Europe\/Amsterdam/.test(await page.locator('#cal-tz').innerText()), 'the time zone is said');
    await times.getByRole('radio', { name: /11:00–12:00/ }).check();
    await page.getByLabel('Number of tickets').selectOption('2');
    const estimate = await page.locator('#buy-estimate').innerText();
    assert(estimate === 'Price: 2 × €25.00 = €50.00', `estimate: ${estimate}`);
    await bothSizes(page, 'the month view with a time chosen', '11-sessions-month');

    await page.getByRole('button', { name: 'Hold tickets' }).click();
    await page.waitForSelector('body[data-view="hold"]');
    assert(holdBodies.length === 1 && holdBodies[0].session === slot.id && holdBodies[0].quantity === 2,
      `the hold names the session: ${JSON.stringify(holdBodies)}`);
    const when = `${dayLabel(day, 'en-US')}, 11:00–12:00 (Europe/Amsterdam time)`;
    assert((await page.locator('#hold-session').innerText()) === when, `the hold's time: ${await page.locator('#hold-session').innerText()}`);
    const total = await page.locator('#hold-total').innerText();
    assert(/^Total\s+€50\.00$/.test(total), `the hold's total: ${total}`);
    const held = await page.locator('#hold-units li').allInnerTexts();
    assert(held.length === 2 && held.every((u) => /Standard · €25\.00/.test(u)), `held: ${held}`);
    console.log(`    held 2 on ${when}: ${total.replace(/\s+/g, ' ')}`);
    const stored = JSON.parse(await page.evaluate((id) => localStorage.getItem(`floodgate:sale:${id}`), saleId)).hold;
    const apiHold = await http('GET', `/api/v1/holds/${stored.id}`, { token: stored.hold_token });
    assert(apiHold.data.session === slot.id && apiHold.data.total.amount === 5000, `the API's hold: ${JSON.stringify(apiHold.data)}`);
    await until(async () => {
      const c = await http('GET', `/api/v1/sales/${saleId}/sessions?after=${Number(slot.id) - 1}&limit=1`);
      return c.data.sessions[0].id === slot.id && c.data.sessions[0].held === 2 && c.data.sessions[0].available === 3;
    }, 10_000, 'the calendar: 2 held, 3 left in that session');
    await bothSizes(page, 'the hold with its time', '12-sessions-hold');

    // A reload shows the same hold and time; so does one after the local copy of the time is gone.
    await page.reload();
    await page.waitForSelector('body[data-view="hold"]');
    assert((await page.locator('#hold-session').innerText()) === when, 'the time after a reload');
    await page.evaluate((id) => {
      const key = `floodgate:sale:${id}`;
      const st = JSON.parse(localStorage.getItem(key));
      delete st.hold.session;
      localStorage.setItem(key, JSON.stringify(st));
    }, saleId);
    await page.reload();
    await page.waitForSelector('body[data-view="hold"]');
    await until(async () => (await page.locator('#hold-session').innerText()) === when, 10_000, 'the time looked up again');

    await page.getByRole('button', { name: 'Pay (dev checkout)' }).click();
    await page.waitForSelector('#view-order[data-state="confirmed"]');
    assert((await page.locator('#order-session').innerText()) === when, `the order's time: ${await page.locator('#order-session').innerText()}`);
    const paid = await page.locator('#order-total').innerText();
    assert(/^Total paid\s+€50\.00$/.test(paid), `the order's total: ${paid}`);
    const orderId = await page.locator('#order-id').innerText();
    const order = await http('GET', `/api/v1/orders/${orderId}`, { token: stored.hold_token });
    assert(order.data.session === slot.id && order.data.total.amount === 5000, `the API's order: ${JSON.stringify(order.data)}`);
    console.log(`    order ${orderId}: ${paid.replace(/\s+/g, ' ')}, ${when}`);
    await bothSizes(page, 'the order with its time', '13-sessions-order');
    await page.reload();
    await page.waitForSelector('#view-order[data-state="confirmed"]');
    assert((await page.locator('#order-session').innerText()) === when, 'the order’s time after a reload');
    assert(errors.length === 0, errors.join('; '));
  } finally {
    await context.close();
  }
});

test('a month of more than 500 sessions is read a page at a time, every day complete', async () => {
  // Every 5 minutes from 08:00 to 20:00 (144 a day) for 41 days: the month after the first has 10 days or more, 1,440 sessions or more.
  const first = addDays(new Date().toISOString().slice(0, 10), 1);
  const last = addDays(first, 40);
  const created = await http('POST', '/admin/v1/sales', {
    admin: true,
    body: {
      name: 'Browser test every five minutes', units: { count: 1 }, per_user_limit: 1, challenge: { difficulty_bits: 0 },
      admission: { admit_per_second: 5, max_active: 5, admission_ttl_seconds: 300, abandon_after_seconds: 60 },
      sessions: { time_zone: 'Asia/Tokyo', recurrence: { from: first, to: last, start: '08:00', end: '20:00', every_minutes: 5 } },
    },
  });
  assert(created.status === 201 && created.data.session_count === 41 * 144, `create: ${created.status} ${JSON.stringify(created.data).slice(0, 300)}`);
  const saleId = created.data.id;
  const errors = [];
  const { context, page } = await newPage(browser, errors);
  const pages = [];
  page.on('request', (req) => {
    const url = new URL(req.url());
    if (url.pathname === `/api/v1/sales/${saleId}/sessions` && url.searchParams.get('to')) pages.push(url.searchParams);
  });
  try {
    await page.goto(`${BASE_URL}/s/${saleId}`);
    await page.getByRole('button', { name: 'Join the queue' }).click();
    await page.waitForSelector('body[data-view="buy"]', { timeout: 30_000 });
    const next = addMonths(monthOf(first), 1);
    await page.waitForSelector(`body[data-calendar="${monthKey(monthOf(first))}"]`);
    pages.length = 0;
    await page.getByRole('button', { name: 'Next month' }).click();
    await page.waitForSelector(`body[data-calendar="${monthKey(next)}"]`);
    const days = [];
    for (let d = `${monthKey(next)}-01`; d <= last && d.startsWith(monthKey(next)); d = addDays(d, 1)) days.push(d);
    const labels = await page.locator('#cal-grid button.cal-day').evaluateAll((bs) => bs.map((b) => [b.dataset.date, b.getAttribute('aria-label')]));
    for (const [date, label] of labels) {
      const want = days.includes(date) ? /: 144 times, 144 left$/ : /: no times$/;
      assert(want.test(label), `${date}: ${label}`);
    }
    const asked = pages.filter((p) => p.get('from') === monthRange(next).from);
    // (The month's range holds a few sessions of the day before too.)
    assert(asked.length >= Math.ceil(days.length * 144 / 500) && asked.length >= 2, `pages asked for ${monthKey(next)}: ${asked.length}`);
    const followed = asked.filter((p) => p.get('after')).length;
    assert(followed >= Math.ceil(days.length * 144 / 500) - 1, `later pages follow next: ${asked.map((p) => p.toString()).join(' | ')}`);
    console.log(`    ${monthKey(next)}: ${days.length} days × 144 sessions in ${asked.length} pages of up to 500`);
    assert(errors.length === 0, errors.join('; '));
  } finally {
    await context.close();
  }
});

// One test after the other with a timeout each (lib.mjs), the browser
// launched before and closed after, then the proof-of-work report.
runTests(tests, {
  timeoutMs: TEST_TIMEOUT_MS,
  setup: async () => {
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: [
        '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
        '--disable-component-update', '--disable-sync', '--no-first-run',
      ],
    });
  },
  teardown: async () => {
    if (browser) await browser.close();
    if (powReport.solve_ms || powReport.page_solve) {
      writeFileSync(path.join(OUT_DIR, 'pow.json'), JSON.stringify(powReport, null, 2) + '\n');
      console.log(`    proof of work: ${path.relative(process.cwd(), path.join(OUT_DIR, 'pow.json'))}`);
    }
  },
});
