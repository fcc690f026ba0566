// Browser test of the draw verification page (/s/{sale}/verify, issue 15)
// against real draws, driven by Debian's Chromium via playwright-core.
// Started by run.sh (BASE_URL, ADMIN_KEY, OUT_DIR as in admin.test.mjs).
//
// A lottery: a visitor enters in the browser (the sale page keeps its place
// in localStorage) and five more over HTTP. Before the draw the page says
// the seed is not revealed and shows the commitment the API publishes
// (axe-core: no violations). After the draw (admin API) the page finds
// sha256(seed) equal to the commitment, recomputes the order of the six
// entries, fills in the browser's own entry and agrees with what the server
// told it (won or lost). Every other entry typed in lands where the server
// says: the winners are exactly the first places, and each loser's
// waitlist position is its place less the winners. So the whole order the
// browser recomputed is the server's.
//
// A shuffled pre-queue: a FIFO sale opening a few seconds later, a visitor
// in the browser and four over HTTP join before the start; after the start
// every entry's place in line (status position, nobody admitted yet) is
// the place the page recomputes. Screenshots at 390×844 (verify-*.png).
//
// A large draw (mocked sale answer, 200,000 entries): the progress bar
// moves while the browser hashes, and the order it finds is the one node
// computes with the same seed (WebCrypto in Chromium against node's).

import { webcrypto } from 'node:crypto';

import { shuffledOrder } from '../../web/js/fairness.js';
import {
  BASE_URL, PHONE, assert, checkAxe, http, joinPlain, launch, runTests, shot, until, watchErrors,
} from './lib.mjs';

let browser;
const errors = [];
const tests = [];
function test(name, fn) { tests.push({ name, fn }); }

async function createSale(body) {
  const r = await http('POST', '/admin/v1/sales', { admin: true, body });
  assert(r.status === 201, `create sale: ${r.status} ${JSON.stringify(r.data)}`);
  return r.data;
}

async function status(saleId, token) {
  const r = await http('GET', `/api/v1/sales/${saleId}/queue/status`, { token });
  assert(r.status === 200, `status: ${r.status} ${JSON.stringify(r.data)}`);
  return r.data;
}

/** The entry number of a place: the answer's `entry`, else claim n of its token. */
function entryOf(answer, token) {
  if (Number.isInteger(answer.entry)) return answer.entry;
  return JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString()).n;
}

/** Opens the sale page in a fresh phone context and joins there: `{context, page, token}`. */
async function joinInBrowser(saleId, buttonName) {
  const context = await browser.newContext(PHONE);
  const page = await context.newPage();
  page.setDefaultTimeout(20_000);
  watchErrors(page, errors);
  await page.goto(`${BASE_URL}/s/${saleId}`);
  await page.getByRole('button', { name: buttonName }).click();
  await page.waitForSelector('body[data-view="queue"]');
  const token = await page.evaluate((id) => JSON.parse(localStorage.getItem('floodgate:sale:' + id)).queue_token, saleId);
  assert(token, 'the sale page should keep the queue token');
  return { context, page, token };
}

/** Types `entry` into the page's form and reads where it landed. */
async function lookUp(page, entry) {
  await page.getByLabel('Entry number').fill(String(entry));
  await page.getByRole('button', { name: 'Find my entry' }).click();
  await page.waitForFunction((e) => document.querySelector('#entry-result').textContent.startsWith('Entry ' + e + ' '), entry);
  return Number(await page.evaluate(() => document.body.dataset.entryPlace));
}

test('lottery: not revealed before the draw; after it the seed matches and every entry lands where the server says', async () => {
  const sale = await createSale({
    name: 'Verify test lottery', mode: 'lottery', units: { count: 6 }, per_user_limit: 2,
    starts_at: new Date(Date.now() + 3600_000).toISOString(), challenge: { difficulty_bits: 0 },
    admission: { admit_per_second: 0, max_active: 10, admission_ttl_seconds: 600, abandon_after_seconds: 600 },
  });
  const { context, page, token } = await joinInBrowser(sale.id, 'Enter the lottery');
  try {
    const others = [];
    for (let i = 0; i < 5; i++) {
      const a = await joinPlain(sale.id);
      others.push({ token: a.queue_token, entry: entryOf(a, a.queue_token) });
    }
    const mine = entryOf(await status(sale.id, token), token);

    await page.goto(`${BASE_URL}/s/${sale.id}/verify`);
    await page.waitForSelector('body[data-commitment="pending"]');
    assert((await page.locator('#commitment').innerText()) === sale.seed_commitment, 'the published commitment is shown');
    assert(/not revealed yet/.test(await page.locator('#commit-check').innerText()), 'says the seed is not revealed');
    await checkAxe(page, 'verify before the draw');
    await shot(page, 'verify-01-before-draw.png');

    const draw = await http('POST', `/admin/v1/sales/${sale.id}/lottery/draw`, { admin: true });
    assert(draw.status === 200, `draw: ${draw.status} ${JSON.stringify(draw.data)}`);
    const { seed, winners, entries } = draw.data;
    assert(entries === 6 && winners === 3, `6 entries, 3 winners: ${JSON.stringify(draw.data)}`);

    const started = Date.now();
    await page.reload();
    await page.waitForSelector('body[data-order="done"]');
    console.log(`    recomputed in ${Date.now() - started} ms (page: ${await page.evaluate(() => document.body.dataset.orderMs)} ms)`);
    assert((await page.evaluate(() => document.body.dataset.commitment)) === 'match', 'sha256(seed) matches the commitment');
    assert((await page.locator('#seed').innerText()) === seed, 'the revealed seed is shown');
    assert((await page.locator('#entries').innerText()) === '6', 'six entries');

    // The browser's own entry, filled in from its stored place.
    await page.waitForFunction(() => document.body.dataset.entryPlace);
    assert((await page.getByLabel('Entry number').inputValue()) === String(mine), `own entry ${mine} filled in`);
    const myPlace = Number(await page.evaluate(() => document.body.dataset.entryPlace));
    const myStatus = await status(sale.id, token);
    assert(myStatus.state === (myPlace <= winners ? 'won' : 'lost'), `entry ${mine} at place ${myPlace}: server says ${myStatus.state}`);
    assert((await page.evaluate(() => document.body.dataset.entryAgrees)) === 'true', 'the page says the server agrees');
    console.log(`    own entry ${mine}: place ${myPlace}, ${myStatus.state}; ${await page.locator('#entry-server').innerText()}`);
    await checkAxe(page, 'verify after the draw');
    await shot(page, 'verify-02-lottery-drawn.png');

    // Every other entry, typed in, lands where the server says.
    const order = new Map([[myPlace, mine]]);
    for (const o of others) {
      const place = await lookUp(page, o.entry);
      const s = await status(sale.id, o.token);
      if (place <= winners) {
        assert(s.state === 'won', `entry ${o.entry} at place ${place} should have won, server says ${s.state}`);
      } else {
        assert(s.state === 'lost' && s.position === place - winners,
          `entry ${o.entry} at place ${place}: server says ${s.state} at waitlist ${s.position}`);
      }
      order.set(place, o.entry);
    }
    assert(order.size === 6, `six distinct places: ${[...order.keys()]}`);
    // The table the page shows is that same order.
    const table = await page.locator('#order-table tbody tr').evaluateAll((rows) => rows.map((r) => Number(r.cells[1].textContent)));
    assert(JSON.stringify(table) === JSON.stringify([1, 2, 3, 4, 5, 6].map((p) => order.get(p))), `table ${table}`);
    console.log(`    order ${table.join(', ')} (winners: the first ${winners})`);

    // An entry that was not in the draw.
    await page.getByLabel('Entry number').fill('7');
    await page.getByRole('button', { name: 'Find my entry' }).click();
    await page.waitForFunction(() => /not in this draw/.test(document.querySelector('#entry-result').textContent));
  } finally {
    await context.close();
  }
});

test('shuffled pre-queue: after the start every entry’s place in line is the recomputed one', async () => {
  const startsIn = 6000;
  const sale = await createSale({
    name: 'Verify test shuffle', units: { count: 10 }, shuffle_prequeue: true,
    starts_at: new Date(Date.now() + startsIn).toISOString(), challenge: { difficulty_bits: 0 },
    admission: { admit_per_second: 0, max_active: 10, admission_ttl_seconds: 600, abandon_after_seconds: 600 },
  });
  const { context, page, token } = await joinInBrowser(sale.id, 'Join the queue');
  try {
    const places = [{ token, entry: entryOf(await status(sale.id, token), token) }];
    for (let i = 0; i < 4; i++) {
      const a = await joinPlain(sale.id);
      places.push({ token: a.queue_token, entry: entryOf(a, a.queue_token) });
    }
    // The sale clock starts the sale and shuffles the pre-queue.
    await until(async () => {
      const r = await http('GET', `/api/v1/sales/${sale.id}`);
      return r.data.seed && r.data.queue && r.data.queue.shuffled_entries === 5 ? r.data : null;
    }, startsIn + 15_000, 'the start and its shuffle');

    await page.goto(`${BASE_URL}/s/${sale.id}/verify`);
    await page.waitForSelector('body[data-order="done"]');
    assert((await page.evaluate(() => document.body.dataset.commitment)) === 'match', 'sha256(seed) matches');
    await page.waitForFunction(() => document.body.dataset.entryPlace);
    assert((await page.evaluate(() => document.body.dataset.entryAgrees)) === 'true',
      `the page agrees with the server on its own place: ${await page.locator('#entry-server').innerText()}`);
    await checkAxe(page, 'verify shuffle');
    await shot(page, 'verify-03-shuffle.png');
    const seen = [];
    for (const p of places) {
      const place = await lookUp(page, p.entry);
      const s = await status(sale.id, p.token);
      assert(s.state === 'waiting' && s.position === place, `entry ${p.entry}: recomputed place ${place}, server position ${s.position} (${s.state})`);
      seen.push(`${p.entry}→${place}`);
    }
    console.log(`    entry→place: ${seen.join(', ')}`);
  } finally {
    await context.close();
  }
});

test('a large draw: progress while the browser hashes 200,000 steps, the same order as node', async () => {
  const SEED = '9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08';
  const P = 200_000;
  const sale = {
    id: 's_mock_large', name: 'Mocked large lottery', state: 'on_sale', mode: 'lottery', seating: 'general',
    waiting_room: true, shuffle_prequeue: false, starts_at: new Date().toISOString(),
    seed_commitment: '7b3d979ca8330a94fa7e9e1b466d8b99e0bcdea1ec90596c0dcc8d7ef6b4300c', seed: SEED,
    lottery_drawn_at: new Date().toISOString(), lottery_winners: 1000,
    queue: { joined: P, serving: 1000, length: P - 1000, shuffled_entries: P },
  };
  const context = await browser.newContext(PHONE);
  const page = await context.newPage();
  watchErrors(page, errors);
  try {
    await page.route('**/api/v1/sales/s_mock_large', (route) => route.fulfill({ status: 200, contentType: 'application/json', body: JSON.stringify(sale) }));
    // Node's answer first, so node is idle (and answering the mocked route)
    // while the browser hashes.
    const order = await shuffledOrder(SEED, P, { subtle: webcrypto.subtle });
    // Every value the progress bar takes, recorded in the page as it is set
    // (the page names each step in aria-valuetext).
    await page.addInitScript(() => {
      window.progressSeen = [];
      document.addEventListener('DOMContentLoaded', () => {
        const bar = document.getElementById('order-progress');
        new MutationObserver(() => window.progressSeen.push(bar.value)).observe(bar, { attributes: true, attributeFilter: ['aria-valuetext'] });
      });
    });
    await page.goto(`${BASE_URL}/s/s_mock_large/verify`);
    await page.waitForSelector('body[data-order="done"]', { timeout: 60_000 });
    const seen = await page.evaluate(() => window.progressSeen);
    const inBetween = seen.filter((v) => v > 0 && v < 1);
    assert(inBetween.length >= 2, `the progress bar should move while hashing: saw ${seen.map((v) => Math.round(v * 100) + '%')}`);
    console.log(`    200,000 steps in ${await page.evaluate(() => document.body.dataset.orderMs)} ms; progress at ${seen.map((v) => Math.round(v * 100) + '%').join(' ')}`);
    const table = await page.locator('#order-table tbody tr').evaluateAll((rows) => rows.map((r) => Number(r.cells[1].textContent.replace(/,/g, ''))));
    assert(table.length === 50 && table.every((e, i) => e === order[i]), `the first 50 places match node's: ${table.slice(0, 5)} vs ${Array.from(order.slice(0, 5))}`);
    const last = order[P - 1];
    await page.getByLabel('Entry number').fill(String(last));
    await page.getByRole('button', { name: 'Find my entry' }).click();
    await page.waitForSelector(`body[data-entry-place="${P}"]`);
  } finally {
    await context.close();
  }
});

test('a shuffle with nobody in the pre-queue says there was nothing to shuffle (mocked)', async () => {
  const sale = {
    id: 's_mock_empty', name: 'Mocked empty pre-queue', state: 'on_sale', mode: 'fifo', seating: 'general',
    waiting_room: true, shuffle_prequeue: true, starts_at: new Date().toISOString(),
    seed_commitment: '7b3d979ca8330a94fa7e9e1b466d8b99e0bcdea1ec90596c0dcc8d7ef6b4300c',
    seed: '9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08',
    queue: { joined: 3, serving: 0, length: 3, shuffled_entries: 0 },
  };
  const context = await browser.newContext(PHONE);
  const page = await context.newPage();
  watchErrors(page, errors);
  try {
    await page.route('**/api/v1/sales/s_mock_empty', (route) => route.fulfill({ status: 200, contentType: 'application/json', body: JSON.stringify(sale) }));
    await page.goto(`${BASE_URL}/s/s_mock_empty/verify`);
    await page.waitForSelector('body[data-order="empty"]');
    assert((await page.evaluate(() => document.body.dataset.commitment)) === 'match', 'the seed still matches');
    assert(/nothing to shuffle/.test(await page.locator('#order-status').innerText()), 'says there was nothing to shuffle');
    assert(await page.locator('#entry-card').isHidden(), 'no entry lookup without entries');
  } finally {
    await context.close();
  }
});

test('no page errors or CSP refusals', async () => {
  assert(errors.length === 0, errors.join('; '));
});

await runTests(tests, {
  setup: async () => { browser = await launch(); },
  teardown: async () => { if (browser) await browser.close(); },
});
