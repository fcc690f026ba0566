// The draw verification page (/s/{sale}/verify): recomputes a sale's
// pre-queue shuffle or lottery order in the browser from the revealed seed
// (fairness.js, WebCrypto SHA-256), checks the seed against the commitment
// published before the draw, and shows where an entry landed: the
// visitor's own (from this browser's stored queue place) or one typed in.
//
// Nothing here trusts the server's word on the order: the server gives the
// seed, the commitment and the number of entries, which are public; the
// order itself is recomputed. What the server told the visitor about their
// own place (won/lost) is shown beside it, so they can see both agree.

import { api, path } from './api.js';
import { fmtNumber, plural } from './format.js';
import { $, badge, clear, node, show, text } from './dom.js';
import { describePlace, placeOf, seedMatchesCommitment, shuffledOrder } from './fairness.js';
import { entryFromToken, parseEntry, serverSays, storedQueueToken } from './verify-entry.js';

/** Places listed in the table (the whole order can be millions long). */
const SHOWN_PLACES = 50;
/** While the seed is not revealed, look again this often. */
const WAIT_REFRESH_MS = 15000;

const state = {
  saleId: '',
  sale: null,
  order: null, // Uint32Array once recomputed
  entries: null, // P
  own: null, // { entry, status } of this browser's place
};

function showAlert(msg) {
  text($('alert'), msg);
  show($('alert'), !!msg);
}

/** What kind of random order the sale has: 'lottery', 'shuffle' or null. */
function drawKind(sale) {
  if (sale.mode === 'lottery') return 'lottery';
  if (sale.waiting_room !== false && sale.shuffle_prequeue) return 'shuffle';
  return null;
}

/** The number of entries the order covers, or null when the server does not say. */
function entryCount(sale) {
  const q = sale.queue || {};
  if (Number.isInteger(q.shuffled_entries)) return q.shuffled_entries;
  // A lottery's entries close at the draw, so every join number was drawn.
  if (sale.mode === 'lottery' && sale.seed && Number.isInteger(q.joined)) return q.joined;
  return null;
}

function renderHeader(sale) {
  text($('page-title'), 'Check the draw: ' + sale.name);
  document.title = 'Check the draw · ' + sale.name + ' · floodgate';
  $('back-link').href = '/s' + path(sale.id);
  const meta = $('sale-meta');
  clear(meta);
  meta.appendChild(badge(sale.state, sale.mode));
  meta.appendChild(document.createTextNode(' ' + (sale.mode === 'lottery' ? 'Lottery' : 'Waiting room')));
  text($('commitment'), sale.seed_commitment || '–');
  text($('seed'), sale.seed || 'not revealed yet');
}

function verdict(el, kind, message) {
  el.className = 'verdict' + (kind ? ' ' + kind : '');
  text(el, message);
}

async function checkCommitment(sale) {
  const el = $('commit-check');
  let ok;
  try {
    ok = await seedMatchesCommitment(sale.seed, sale.seed_commitment);
  } catch {
    verdict(el, 'bad', 'This browser cannot compute SHA-256 here (it needs a secure https connection and an up-to-date browser).');
    document.body.dataset.commitment = 'unsupported';
    return false;
  }
  document.body.dataset.commitment = ok ? 'match' : 'mismatch';
  verdict(el, ok ? 'ok' : 'bad', ok
    ? '✓ The seed matches the commitment: SHA-256 of the seed is exactly the hash published before the draw.'
    : '✗ The seed does NOT match the commitment. The order below cannot be trusted.');
  return ok;
}

function outcomeText(place, sale) {
  const d = describePlace(place, { mode: sale.mode, winners: sale.lottery_winners });
  if (!d) return '';
  if (d.kind === 'won') return 'Winner';
  if (d.kind === 'waitlist') return 'Waitlist ' + fmtNumber(d.waitlistPlace);
  return 'Place ' + fmtNumber(d.place);
}

function renderOrder(sale, order) {
  const body = $('order-table').querySelector('tbody');
  clear(body);
  const n = Math.min(SHOWN_PLACES, order.length);
  for (let i = 0; i < n; i++) {
    const tr = node('tr');
    tr.appendChild(node('td', null, fmtNumber(i + 1)));
    tr.appendChild(node('td', null, fmtNumber(order[i])));
    tr.appendChild(node('td', null, sale.mode === 'lottery' ? outcomeText(i + 1, sale) : 'In line'));
    body.appendChild(tr);
  }
  text($('order-caption'), order.length > n
    ? 'The first ' + n + ' of ' + fmtNumber(order.length) + ' places'
    : 'All ' + plural(order.length, 'place', 'places'));
  const lottery = sale.mode === 'lottery';
  text($('order-summary'), lottery
    ? plural(order.length, 'entry was', 'entries were') + ' drawn; the first ' +
      plural(Number(sale.lottery_winners) || 0, 'place wins', 'places win') +
      ', the rest form the waitlist in this order.'
    : plural(order.length, 'visitor', 'visitors') + ' joined before the start; they were put in line in this order, ahead of everyone who came later.');
  show($('order-result'), true);
}

async function recompute(sale) {
  const P = state.entries;
  show($('order-card'), true);
  const bar = $('order-progress');
  const status = $('order-status');
  text(status, 'Recomputing the order of ' + plural(P, 'entry', 'entries') + '…');
  document.body.dataset.order = 'computing';
  const started = performance.now();
  let lastPaint = 0;
  try {
    state.order = await shuffledOrder(sale.seed, P, {
      onProgress: (done, total) => {
        const t = performance.now();
        if (t - lastPaint < 100 && done < total) return;
        lastPaint = t;
        bar.value = total ? done / total : 1;
        bar.setAttribute('aria-valuetext', fmtNumber(done) + ' of ' + fmtNumber(total) + ' steps');
      },
    });
  } catch (err) {
    document.body.dataset.order = 'failed';
    text(status, err && err.code === 'unsupported'
      ? 'This browser cannot compute SHA-256 here (it needs a secure https connection and an up-to-date browser).'
      : 'Recomputing the order failed: ' + (err && err.message));
    return;
  }
  bar.value = 1;
  bar.setAttribute('aria-valuetext', 'done');
  const ms = performance.now() - started;
  document.body.dataset.order = 'done';
  document.body.dataset.orderMs = String(Math.round(ms));
  text(status, 'Recomputed ' + plural(P, 'entry', 'entries') + ' in ' + (ms / 1000).toFixed(1) + ' s.');
  renderOrder(sale, state.order);
}

// --- the visitor's entry ------------------------------------------------------

async function loadOwnEntry() {
  const token = storedQueueToken(state.saleId);
  if (!token) return null;
  let entry = entryFromToken(token, state.saleId);
  let status = null;
  try {
    const r = await api('GET', path('sales', state.saleId, 'queue', 'status'), { token });
    if (r.ok && r.data) {
      status = r.data;
      if (Number.isSafeInteger(r.data.entry) && r.data.entry > 0) entry = r.data.entry;
    }
  } catch {
    /* the number from the token is enough to look it up */
  }
  return entry ? { entry, status } : null;
}

function findEntry(entry) {
  const sale = state.sale;
  const out = $('entry-result');
  const serverEl = $('entry-server');
  text(serverEl, '');
  if (!state.order) {
    verdict(out, '', 'The order is not recomputed yet.');
    return;
  }
  const place = placeOf(state.order, entry);
  if (place == null) {
    document.body.dataset.entryPlace = '';
    verdict(out, 'bad', 'Entry ' + fmtNumber(entry) + ' is not in this draw: it had ' +
      plural(state.order.length, 'entry', 'entries') + ', numbered 1 to ' + fmtNumber(state.order.length) + '.');
    return;
  }
  document.body.dataset.entryPlace = String(place);
  // Mark the entry's row when the table shows it.
  const rows = $('order-table').querySelectorAll('tbody tr');
  rows.forEach((tr, i) => {
    if (i + 1 === place) tr.setAttribute('aria-current', 'true');
    else tr.removeAttribute('aria-current');
  });
  const d = describePlace(place, { mode: sale.mode, winners: sale.lottery_winners });
  let words = 'Entry ' + fmtNumber(entry) + ' landed in place ' + fmtNumber(place) + ' of ' + fmtNumber(state.order.length);
  if (d.kind === 'won') words += ': a winner.';
  else if (d.kind === 'waitlist') words += ': not a winner; number ' + fmtNumber(d.waitlistPlace) + ' on the waitlist, in draw order.';
  else words += ' in line.';
  verdict(out, d.kind === 'won' ? 'ok' : '', words);

  // The server's word on this browser's own place, beside the recomputed one.
  const own = state.own;
  if (own && own.entry === entry && own.status) {
    const serving = sale.queue ? sale.queue.serving : null;
    const said = serverSays(own.status, { mode: sale.mode, winners: sale.lottery_winners, place, serving });
    const agree = said.agrees === true ? ' ✓ That agrees with the recomputed order.'
      : said.agrees === false ? ' ✗ That does not agree with the recomputed order.' : '';
    text(serverEl, said.text + agree);
    document.body.dataset.entryAgrees = said.agrees == null ? '' : String(said.agrees);
  }
}

function setupEntryForm() {
  const input = $('entry-number');
  $('entry-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const entry = parseEntry(input.value);
    if (entry == null) {
      input.setAttribute('aria-invalid', 'true');
      verdict($('entry-result'), 'bad', 'Type your entry number, a whole number from 1.');
      input.focus();
      return;
    }
    input.removeAttribute('aria-invalid');
    findEntry(entry);
  });
  input.addEventListener('input', () => input.removeAttribute('aria-invalid'));
}

// --- start --------------------------------------------------------------------

async function fetchSale() {
  const r = await api('GET', path('sales', state.saleId));
  if (r.ok && r.data) return r.data;
  if (r.status === 404) return null;
  throw r;
}

function notRevealed(sale, kind) {
  document.body.dataset.commitment = 'pending';
  const el = $('commit-check');
  if (!kind) {
    verdict(el, '', 'This sale does not draw a random order: visitors are served in the order they join.');
    return;
  }
  verdict(el, '', kind === 'lottery'
    ? 'The seed is not revealed yet: it is revealed when the lottery is drawn. Keep the commitment above; you can check the seed against it after the draw.'
    : 'The seed is not revealed yet: it is revealed when the sale opens and the waiting room is shuffled. Keep the commitment above; you can check the seed against it then.');
  setTimeout(() => start(true), WAIT_REFRESH_MS);
}

async function start(again) {
  let sale;
  try {
    sale = await fetchSale();
  } catch (r) {
    if (!again) showAlert('Could not load the sale. Please reload the page.');
    if (again) setTimeout(() => start(true), WAIT_REFRESH_MS);
    return;
  }
  if (!sale) {
    showAlert('This sale does not exist.');
    return;
  }
  state.sale = sale;
  renderHeader(sale);
  const kind = drawKind(sale);
  if (!sale.seed || !kind) return notRevealed(sale, kind);

  const ok = await checkCommitment(sale);
  state.entries = entryCount(sale);
  text($('entries'), state.entries == null ? 'not published' : fmtNumber(state.entries));
  if (state.entries == null) {
    show($('order-card'), true);
    text($('order-status'), 'The server does not publish how many entries the draw covered, so the order cannot be recomputed here.');
    show($('order-progress'), false);
    return;
  }
  if (state.entries === 0) {
    show($('order-card'), true);
    show($('order-progress'), false);
    text($('order-status'), kind === 'lottery'
      ? 'Nobody entered the lottery, so there was nothing to draw.'
      : 'Nobody joined before the start, so there was nothing to shuffle: everyone is in line in the order they joined.');
    document.body.dataset.order = 'empty';
    return;
  }
  show($('entry-card'), true);
  const ownPromise = loadOwnEntry();
  await recompute(sale);
  state.own = await ownPromise;
  if (state.own) {
    $('entry-number').value = String(state.own.entry);
    text($('entry-source'), 'This browser joined this sale as entry ' + fmtNumber(state.own.entry) + '.');
    findEntry(state.own.entry);
  } else {
    text($('entry-source'), 'This browser has no place in this sale; type an entry number to look it up.');
  }
  if (!ok) document.body.dataset.order = 'untrusted';
}

export function verifyPage() {
  state.saleId = decodeURIComponent(location.pathname.split('/')[2] || '');
  setupEntryForm();
  if (!state.saleId) {
    showAlert('This address does not name a sale.');
    return;
  }
  start(false);
}
