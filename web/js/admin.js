// The admin console (/admin): sign in with the admin key, then every sale
// live (refreshed every 1.5 s from the admin API) with the selected one's
// figures, charts and controls, sale creation and dead letters.
//
// What the page knows lives in `state`. The list of sales comes from
// GET /admin/v1/sales; the selected sale's full statistics from
// GET /admin/v1/sales/{sale}. Chart series are sampled at each refresh
// and kept in memory only.

import { path, retryAfterSeconds } from './api.js';
import { fmtNumber } from './format.js';
import { $, badge, busy, clear, node, show, text } from './dom.js';
import { adminApi, adminKey, forgetAdminKey, setAdminKey } from './admin-api.js';
import { Series } from './admin-chart.js';
import { total } from './admin-format.js';
import { fillAdmissionForm, renderSale, resetSalePanel, say, wireControls, errorWords } from './admin-sale.js';
import { wireCreate } from './admin-create.js';
import { loadDead, wireDead } from './admin-dead.js';
import { renderSessions, wireSessions } from './admin-sessions.js';

const REFRESH_MS = 1500;
/** A tab nobody looks at refreshes this seldom (at once again on return). */
const HIDDEN_REFRESH_MS = 15000;
/** Dead letters change rarely: reload them every so many refreshes. */
const DEAD_EVERY = 20;

const state = {
  sales: [], // SaleView of every sale, newest first
  selected: null, // sale id
  detail: null, // GET /admin/v1/sales/{selected}
  history: new Map(), // sale id -> { queue, rate, sold: Series, counts: [{t, holds, orders, expired}] }
  timer: null,
  ticks: 0,
  running: false,
  inFlight: false,
  again: false,
  delay: REFRESH_MS,
};

function showAlert(msg) {
  text($('alert'), msg);
  show($('alert'), !!msg);
}

// --- sign in and out -----------------------------------------------------------

function showSignIn(message) {
  stop();
  show($('console'), false);
  show($('signed-in'), false);
  show($('signin'), true);
  text($('signin-error'), message || '');
  const input = $('admin-key');
  input.value = '';
  if (message) input.setAttribute('aria-invalid', 'true');
  input.focus();
  document.body.dataset.signedIn = 'false';
}

function showConsole() {
  show($('signin'), false);
  show($('console'), true);
  show($('signed-in'), true);
  document.body.dataset.signedIn = 'true';
  showAlert('');
  start();
}

/** The key was refused (401): forget it and say so. */
function unauthorized(r) {
  forgetAdminKey();
  const e = r && r.data && r.data.error;
  showSignIn('The server refused the admin key' + (e && e.message ? ' (' + e.message + ')' : '') + '. Check it and sign in again.');
}

async function signIn(e) {
  e.preventDefault();
  const input = $('admin-key');
  const key = input.value.trim();
  if (!key) {
    input.setAttribute('aria-invalid', 'true');
    text($('signin-error'), 'Enter the admin key.');
    return;
  }
  const btn = $('signin-btn');
  busy(btn, true);
  text($('signin-error'), '');
  let r;
  try {
    // Any admin call tells whether the key is good; this one is cheap.
    r = await adminApi('GET', '/events/dead?limit=1', { key });
  } catch {
    busy(btn, false);
    text($('signin-error'), 'Could not reach the server. Try again.');
    return;
  }
  busy(btn, false);
  if (r.status === 401) {
    input.setAttribute('aria-invalid', 'true');
    const m = r.data && r.data.error && r.data.error.message;
    text($('signin-error'), 'That admin key was not accepted' + (m ? ': ' + m : '') + '.');
    input.select();
    return;
  }
  if (!r.ok) {
    text($('signin-error'), errorWords(r));
    return;
  }
  input.removeAttribute('aria-invalid');
  input.value = '';
  setAdminKey(key);
  showConsole();
}

function signOut() {
  forgetAdminKey();
  state.sales = [];
  state.selected = null;
  state.detail = null;
  state.history.clear();
  clear($('sale-list'));
  showSignIn('');
  $('admin-key').removeAttribute('aria-invalid');
}

// --- the live refresh --------------------------------------------------------------

function historyOf(id) {
  let h = state.history.get(id);
  if (!h) {
    h = { queue: new Series(), rate: new Series(), sold: new Series(), counts: [] };
    state.history.set(id, h);
  }
  return h;
}

/** Samples one sale's figures into its chart series (and its counts history). */
function record(sale, detail, t) {
  const h = historyOf(sale.id);
  const q = sale.queue;
  h.queue.add(t, q ? q.length : null);
  h.rate.add(t, q ? (q.admission_rate ?? 0) : null);
  h.sold.add(t, sale.availability ? sale.availability.sold : null);
  if (detail) {
    h.counts.push({ t, holds: total(detail.holds), orders: total(detail.orders), expired: (detail.holds && detail.holds.expired) || 0 });
    while (h.counts.length && h.counts[0].t < t - 120_000) h.counts.shift();
  }
}

async function loadSales() {
  const r = await adminApi('GET', '/sales');
  if (r.status === 401) throw r;
  if (r.ok && Array.isArray(r.data)) return r.data;
  const e = new Error('list');
  e.answer = r;
  throw e;
}

async function loadDetail(id) {
  const r = await adminApi('GET', path('sales', id));
  if (r.status === 401) throw r;
  if (r.ok && r.data) return r.data;
  if (r.status === 404) return null;
  const e = new Error('detail');
  e.answer = r;
  throw e;
}

async function refresh() {
  state.timer = null;
  if (!state.running) return;
  state.inFlight = true;
  state.again = false;
  const t = Date.now();
  try {
    const sales = await loadSales();
    // The list is the public view of every sale (cheap to poll); the
    // selected sale's holds, orders and activity come from its own view.
    const listed = state.selected && sales.find((s) => s.id === state.selected);
    const detail = !state.selected || !listed ? null : (listed.holds ? listed : await loadDetail(state.selected));
    if (!state.running) { state.inFlight = false; return; }
    state.sales = sales;
    state.detail = detail;
    for (const sale of sales) {
      const full = sale.id === state.selected ? detail : (sale.holds ? sale : null);
      record(full || sale, full, t);
    }
    if (state.selected && !detail) state.selected = null;
    render(t);
    text($('updated'), 'Live · updated ' + new Date(t).toLocaleTimeString());
    document.body.dataset.refreshes = String(++state.ticks);
    showAlert('');
    state.delay = REFRESH_MS;
  } catch (err) {
    state.inFlight = false;
    if (err && err.status === 401) return unauthorized(err);
    const r = err && err.answer;
    if (r) {
      showAlert('The admin API answered ' + r.status + ': ' + errorWords(r) + ' Retrying…');
      state.delay = (retryAfterSeconds(r.res) || 3) * 1000;
    } else {
      showAlert('Could not reach the server. Retrying…');
      state.delay = Math.min(state.delay * 2, 15000);
    }
    text($('updated'), 'Offline · retrying');
  }
  state.inFlight = false;
  if (state.ticks % DEAD_EVERY === 1) loadDead();
  schedule(state.again ? 0 : document.hidden ? Math.max(state.delay, HIDDEN_REFRESH_MS) : state.delay);
}

function schedule(ms) {
  if (!state.running) return;
  // One refresh at a time: a request for a fresh one while one runs is
  // served right after it.
  if (state.inFlight) {
    if (ms === 0) state.again = true;
    return;
  }
  if (state.timer) clearTimeout(state.timer);
  state.timer = setTimeout(refresh, ms);
}

function start() {
  state.running = true;
  state.ticks = 0;
  schedule(0);
  loadDead();
}

function stop() {
  state.running = false;
  if (state.timer) clearTimeout(state.timer);
  state.timer = null;
}

// --- rendering ----------------------------------------------------------------------

function saleItem(sale) {
  const li = node('li');
  const btn = node('button', 'sale-item');
  btn.type = 'button';
  btn.dataset.sale = sale.id;
  if (sale.id === state.selected) btn.setAttribute('aria-current', 'true');
  btn.appendChild(node('span', 'sale-item-name', sale.name));
  const line = node('span', 'sale-item-line');
  line.appendChild(badge(sale.state, sale.mode));
  const q = sale.queue;
  const bits = [];
  if (sale.mode === 'lottery') bits.push('lottery');
  if (q) bits.push(fmtNumber(q.length) + ' waiting', fmtNumber(q.active) + '/' + fmtNumber(sale.admission.max_active) + ' active');
  if (sale.availability) bits.push(fmtNumber(sale.availability.sold) + '/' + fmtNumber(sale.availability.total) + ' sold');
  if (sale.currency) bits.push(sale.currency);
  line.appendChild(document.createTextNode(' ' + bits.join(' · ')));
  btn.appendChild(line);
  btn.addEventListener('click', () => select(sale.id, true));
  li.appendChild(btn);
  return li;
}

function render(t) {
  const list = $('sale-list');
  // Keep focus on the sale button it was on across the re-render.
  const focused = document.activeElement && document.activeElement.dataset ? document.activeElement.dataset.sale : null;
  clear(list);
  for (const sale of state.sales) list.appendChild(saleItem(sale));
  if (focused) {
    const again = list.querySelector('[data-sale="' + CSS.escape(focused) + '"]');
    if (again) again.focus();
  }
  show($('sales-empty'), state.sales.length === 0);
  const sale = state.selected && (state.detail || state.sales.find((s) => s.id === state.selected));
  show($('no-selection'), !sale);
  show($('sale-detail'), !!sale);
  if (sale) renderSale(sale, state.detail, state.history.get(sale.id), t || Date.now());
  renderSessions(sale || null);
}

async function select(id, focus) {
  if (state.selected !== id) {
    state.selected = id;
    state.detail = null;
    resetSalePanel();
    const sale = state.sales.find((s) => s.id === id);
    if (sale) fillAdmissionForm(sale);
    render();
  }
  if (focus) $('sale-title').focus();
  // Fresh figures now rather than at the next tick.
  schedule(0);
}

// --- start --------------------------------------------------------------------------

export function adminPage() {
  $('signin-form').addEventListener('submit', signIn);
  $('admin-key').addEventListener('input', (e) => e.target.removeAttribute('aria-invalid'));
  $('signout-btn').addEventListener('click', signOut);
  const ctx = {
    sale: () => state.detail || state.sales.find((s) => s.id === state.selected) || null,
    refresh: () => schedule(0),
    unauthorized,
    onCreated: (sale) => {
      state.sales = [sale].concat(state.sales.filter((s) => s.id !== sale.id));
      select(sale.id, true);
    },
  };
  wireControls(ctx);
  wireCreate(ctx);
  wireDead(ctx);
  wireSessions(ctx);
  document.addEventListener('visibilitychange', () => { if (!document.hidden) schedule(0); });
  if (adminKey()) showConsole();
  else showSignIn('');
}
