// The sessions of the selected sale in the admin console (SPEC §3
// "Sessions"): a page of them at a time from the public calendar
// (GET /api/v1/sales/{sale}/sessions, `next` to page on), each with its
// local date and time, state and units by state, and the admin's
// pause/resume, close and cancel (PATCH /admin/v1/sales/{sale}/sessions/
// {session}), each behind the console's confirmation step. The page shown
// is fetched again every few seconds while the console refreshes; rows are
// updated in place, so a focused button keeps its focus.

import { path } from './api.js';
import { fmtNumber } from './format.js';
import { isDate, localMidnight, sessionDate, shortDayLabel, slotText } from './calendar.js';
import { $, busy, clear, node, show, text } from './dom.js';
import { adminApi, publicApi } from './admin-api.js';
import { confirmStep } from './admin-confirm.js';
import { errorWords } from './admin-sale.js';

const PAGE = 20;
/** The shown page is fetched again at most this often. */
const RELOAD_MS = 3000;

const STATE_LABELS = { on_sale: 'On sale', paused: 'Paused', closed: 'Closed', cancelled: 'Cancelled' };

const st = {
  saleId: null,
  timeZone: null,
  from: null, // RFC 3339: sessions starting then or later; null: from the first
  cursors: [null], // `after` of each page seen
  page: 0,
  next: null,
  rows: [],
  loading: false,
  loadedAt: 0,
  ctx: null,
};

function status(msg, kind) {
  const el = $('sessions-status');
  el.className = 'action-status' + (kind ? ' ' + kind : '');
  text(el, msg);
}

/** "Sun, Mar 28, 2027, 10:00–10:30" of a session. */
function when(s) {
  const date = sessionDate(s);
  return date ? shortDayLabel(date) + ', ' + slotText(s) : 'session ' + s.id;
}

// --- loading ----------------------------------------------------------------------

async function load() {
  const saleId = st.saleId;
  if (!saleId || st.loading) return;
  st.loading = true;
  const params = { limit: String(PAGE) };
  if (st.from) params.from = st.from;
  const after = st.cursors[st.page];
  if (after) params.after = after;
  let r;
  try {
    r = await publicApi('GET', path('sales', saleId, 'sessions') + '?' + new URLSearchParams(params).toString());
  } catch {
    r = null;
  }
  st.loading = false;
  st.loadedAt = Date.now();
  if (saleId !== st.saleId) return;
  if (!r || !r.ok || !r.data || !Array.isArray(r.data.sessions)) {
    text($('sessions-page'), r ? 'Could not load the sessions: ' + errorWords(r) : 'Could not reach the server to load the sessions.');
    return;
  }
  st.timeZone = r.data.time_zone || st.timeZone;
  st.rows = r.data.sessions;
  st.next = r.data.next || null;
  renderTable();
}

// --- rendering --------------------------------------------------------------------

function actionButton(kind, s) {
  const btn = node('button', 'secondary small-btn' + (kind === 'close' || kind === 'cancel' ? ' danger' : ''));
  btn.type = 'button';
  btn.dataset.action = kind;
  btn.appendChild(node('span', 'act-verb'));
  btn.appendChild(node('span', 'visually-hidden act-what'));
  btn.appendChild(document.createTextNode('…'));
  btn.addEventListener('click', () => act(btn, btn.dataset.action, btn.closest('tr').dataset.session));
  return btn;
}

function buildRow(s) {
  const tr = node('tr');
  tr.dataset.session = String(s.id);
  const th = node('th', 'session-when');
  th.setAttribute('scope', 'row');
  th.appendChild(node('span', 's-date'));
  th.appendChild(document.createTextNode(' '));
  th.appendChild(node('span', 's-time'));
  tr.appendChild(th);
  for (let i = 0; i < 6; i++) tr.appendChild(node('td'));
  const cell = node('td', 'row-actions');
  cell.appendChild(actionButton('pause', s));
  cell.appendChild(actionButton('close', s));
  cell.appendChild(actionButton('cancel', s));
  tr.appendChild(cell);
  return tr;
}

function fillRow(tr, s) {
  const cells = tr.children;
  const date = sessionDate(s);
  text(cells[0].querySelector('.s-date'), date ? shortDayLabel(date) : '–');
  text(cells[0].querySelector('.s-time'), slotText(s));
  const badge = node('span', 'badge ' + s.state, STATE_LABELS[s.state] || s.state);
  if (cells[1].firstChild && cells[1].firstChild.textContent === badge.textContent) {
    cells[1].firstChild.className = badge.className;
  } else {
    clear(cells[1]);
    cells[1].appendChild(badge);
  }
  [s.capacity, s.available, s.held, s.sold, s.withdrawn].forEach((v, i) => text(cells[2 + i], v == null ? '–' : fmtNumber(v)));
  tr.dataset.state = s.state;
  const what = ' session ' + when(s);
  for (const btn of tr.querySelectorAll('button[data-action]')) {
    let kind = btn.dataset.action;
    if (kind === 'pause' || kind === 'resume') {
      kind = s.state === 'paused' ? 'resume' : 'pause';
      btn.dataset.action = kind;
    }
    text(btn.querySelector('.act-verb'), { pause: 'Pause', resume: 'Resume', close: 'Close', cancel: 'Cancel' }[kind]);
    text(btn.querySelector('.act-what'), what);
    btn.disabled = !allowed(kind, s.state);
  }
}

/** Which actions a session's state allows (as the API's life cycle does, leaving out the ones that change nothing). */
function allowed(action, state) {
  switch (action) {
    case 'pause': return state === 'on_sale';
    case 'resume': return state === 'paused';
    case 'close': return state === 'on_sale' || state === 'paused';
    case 'cancel': return state !== 'cancelled';
    default: return false;
  }
}

function renderTable() {
  const body = $('sessions-table').querySelector('tbody');
  const same = body.children.length === st.rows.length &&
    st.rows.every((s, i) => body.children[i].dataset.session === String(s.id));
  if (!same) {
    const hadFocus = body.contains(document.activeElement);
    clear(body);
    for (const s of st.rows) body.appendChild(buildRow(s));
    if (hadFocus) $('sessions-region').focus();
  }
  st.rows.forEach((s, i) => fillRow(body.children[i], s));
  show($('sessions-table'), st.rows.length > 0);
  const first = st.page * PAGE + 1;
  text($('sessions-page'), st.rows.length
    ? 'Sessions ' + fmtNumber(first) + '–' + fmtNumber(first + st.rows.length - 1) + (st.from ? ' from ' + $('sessions-from').value : '') + '.'
    : (st.from ? 'No sessions from ' + $('sessions-from').value + ' on.' : 'No sessions.'));
  $('sessions-prev').disabled = st.page === 0;
  $('sessions-next').disabled = !st.next;
  document.body.dataset.sessionsLoaded = String(st.loadedAt);
}

/**
 * Shows the sessions of `sale` (hidden for a sale without any); called at
 * every refresh of the console, it fetches the shown page again when it is
 * a few seconds old.
 */
export function renderSessions(sale) {
  const has = !!(sale && sale.session_count > 0);
  show($('sessions-box'), has);
  if (!has) {
    st.saleId = null;
    return;
  }
  if (sale.id !== st.saleId) {
    Object.assign(st, { saleId: sale.id, timeZone: sale.time_zone || null, from: null, cursors: [null], page: 0, next: null, rows: [], loadedAt: 0 });
    $('sessions-from').value = '';
    clear($('sessions-table').querySelector('tbody'));
    status('');
    load();
  } else if (Date.now() - st.loadedAt > RELOAD_MS) {
    load();
  }
  text($('sessions-sub'), fmtNumber(sale.session_count) + (sale.session_count === 1 ? ' session' : ' sessions') +
    ', times in ' + ((sale.time_zone || st.timeZone || 'UTC').replace(/_/g, ' ')) + '.');
}

// --- actions ----------------------------------------------------------------------

const CONFIRM = {
  pause: (w) => ({ title: 'Pause the session ' + w + '?', body: 'Nobody can hold tickets for this time until you resume it. Holds and orders it has stay as they are.', confirmLabel: 'Pause the session' }),
  resume: (w) => ({ title: 'Resume the session ' + w + '?', body: 'Buyers can hold tickets for this time again.', confirmLabel: 'Resume the session' }),
  close: (w) => ({ title: 'Close the session ' + w + '?', body: 'Its free tickets are withdrawn for good; tickets already held may still be paid. A closed session cannot be reopened.', confirmLabel: 'Close the session', danger: true }),
  cancel: (w) => ({ title: 'Cancel the session ' + w + '?', body: 'Its holds are released and its orders cancelled (each with a refund due); none of its tickets go back on sale. This cannot be undone.', confirmLabel: 'Cancel the session', danger: true }),
};

const NOW = { on_sale: 'on sale', paused: 'paused', closed: 'closed', cancelled: 'cancelled' };

async function act(button, action, id) {
  const s = st.rows.find((x) => String(x.id) === id);
  const saleId = st.saleId;
  if (!s || !saleId || !CONFIRM[action]) return;
  const w = when(s);
  if (!(await confirmStep(CONFIRM[action](w)))) {
    status('Cancelled: nothing was changed.');
    return;
  }
  busy(button, true);
  status('Working…');
  let r;
  try {
    r = await adminApi('PATCH', path('sales', saleId, 'sessions', id), { body: { action } });
  } catch {
    busy(button, false);
    status('Could not reach the server. Nothing may have changed; check the list and try again.', 'bad');
    return;
  }
  busy(button, false);
  if (r.status === 401) return st.ctx && st.ctx.unauthorized(r);
  if (r.ok && r.data) {
    const i = st.rows.findIndex((x) => String(x.id) === id);
    if (i >= 0) st.rows[i] = r.data;
    renderTable();
    status('The session ' + w + ' is ' + (NOW[r.data.state] || r.data.state) + ' now.', 'ok');
  } else {
    status(errorWords(r), 'bad');
    st.loadedAt = 0;
  }
  // The button that was used may be disabled now: keep the focus near.
  if (button.disabled) $('sessions-status').focus();
  if (st.ctx) st.ctx.refresh();
}

/** Wires the pager and the date filter; `ctx.unauthorized(r)` signs out, `ctx.refresh()` refreshes the console. */
export function wireSessions(ctx) {
  st.ctx = ctx;
  $('sessions-prev').addEventListener('click', () => {
    if (st.page === 0) return;
    st.page--;
    load();
  });
  $('sessions-next').addEventListener('click', () => {
    if (!st.next) return;
    st.cursors[st.page + 1] = st.next;
    st.page++;
    load();
  });
  $('sessions-from-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const input = $('sessions-from');
    const date = input.value;
    if (date && !isDate(date)) {
      input.setAttribute('aria-invalid', 'true');
      status('The date is not a date (YYYY-MM-DD).', 'bad');
      input.focus();
      return;
    }
    input.removeAttribute('aria-invalid');
    status('');
    st.from = date ? localMidnight(date, st.timeZone || 'UTC') : null;
    st.cursors = [null];
    st.page = 0;
    load();
  });
}
