// The waiting room of one sale (/s/{sale}): join, follow the place in line,
// choose and hold tickets when admitted, pay (dev checkout), see the order.
//
// What the page knows lives in one object, `state`; the queue token, the
// hold and the order are also kept in localStorage so a reload picks up
// where the visitor was. Each step is a small function that reads `state`,
// calls the API and renders one of the views (<section id="view-…">), whose
// name is also put on <body data-view="…">.

import { api, errorOf, explain, now, path, randomKey, retryAfterSeconds } from './api.js';
import {
  aheadText, categoryAvailabilityText, checkProgressText, estimateText, fmtCountdown, fmtDate, fmtMoney, fmtNumber,
  fmtWait, heldTitle, parseSeats, plainError, plural, queueTitle, saleCategories, saleMetaText, unitPriceText,
  waitingLiveText,
} from './format.js';
import { $, badge, busy, clear, node, show, text } from './dom.js';
import { expectedAttempts } from './pow.js';
import { startSolving } from './pow-client.js';
import { dayLabel, sessionDate, slotText } from './calendar.js';
import { createSessionPicker, findSession, sessionSummary } from './sale-sessions.js';

const VIEWS = ['loading', 'join', 'queue', 'buy', 'hold', 'order', 'end'];

/** Refusals of a challenge that a fresh challenge may cure. */
const CHALLENGE_RETRY = new Set(['challenge_required', 'challenge_failed', 'challenge_expired', 'challenge_reused']);
/** Fresh challenges tried for one join before the page gives up and says so. */
const CHALLENGE_TRIES = 3;

/** Everything the page knows. */
const state = {
  saleId: '',
  sale: null, // GET /sales/{sale}
  phase: 'loading', // the view shown, one of VIEWS
  // Kept in localStorage under `floodgate:sale:<id>`:
  queueToken: null, // the place in line
  startAhead: null, // people ahead at the start, for the progress bar
  hold: null, // { id, hold_token, expires_at, units, quantity, total, session } (total: {amount, currency} when priced;
  //              session: the session's id, times and time zone, for a sale with sessions)
  order: null, // { id, hold_token, session }
  // This page only:
  admission: null, // { token, expiresAt } while admitted
  pendingHold: null, // { key, body } of a hold whose answer was lost
  category: null, // the price category chosen in the buy form (sales with several)
  picker: null, // the date-and-time picker of a sale with sessions (sale-sessions.js)
  polling: false,
  pollTimer: null,
  pollBackoff: 2000,
  transientAlert: false, // the alert says "busy/offline, retrying" and goes once that passes
  // Proof of work (SPEC §4a), asked of a join without a queue token:
  challengeNeeded: null, // true | false (the sale says difficulty 0) | null (unknown: ask)
  solver: null, // { cancel } while solving
  solveMs: null, // how long the last solve took
  checkSlowSaid: false, // "still checking" said once per solve
  lastLive: '',
  firstView: true,
};

// ---------------------------------------------------------------------------
// Storage: the queue token, the hold and the order survive a reload
// ---------------------------------------------------------------------------

let memory = {}; // when localStorage is unavailable

function storeKey() {
  return 'floodgate:sale:' + state.saleId;
}

function loadStored() {
  let st;
  try {
    const raw = window.localStorage.getItem(storeKey());
    st = raw ? JSON.parse(raw) : {};
  } catch {
    st = memory;
  }
  state.queueToken = st.queue_token || null;
  state.startAhead = st.start_ahead == null ? null : st.start_ahead;
  state.hold = st.hold || null;
  state.order = st.order || null;
}

/** Sets fields of `state` (queueToken, startAhead, hold, order) and stores them. */
function remember(patch) {
  Object.assign(state, patch);
  const st = {};
  if (state.queueToken) st.queue_token = state.queueToken;
  if (state.startAhead != null) st.start_ahead = state.startAhead;
  if (state.hold) st.hold = state.hold;
  if (state.order) st.order = state.order;
  memory = st;
  try {
    window.localStorage.setItem(storeKey(), JSON.stringify(st));
  } catch {
    /* memory only */
  }
}

function forgetPlace() {
  remember({ queueToken: null, startAhead: null });
}

// ---------------------------------------------------------------------------
// Views, alerts, announcements
// ---------------------------------------------------------------------------

function setView(name) {
  if (name === state.phase) return;
  for (const v of VIEWS) show($('view-' + v), v === name);
  if (name !== 'buy' && state.picker) state.picker.stop();
  state.phase = name;
  document.body.setAttribute('data-view', name);
  // Move focus to the new step's heading so keyboard and screen-reader users
  // land on it; not on the first view, to leave page load alone.
  if (!state.firstView) {
    const heading = document.querySelector('#view-' + name + ' h2');
    if (heading) heading.focus();
  }
  state.firstView = state.firstView && name === 'loading';
}

function showAlert(msg, kind) {
  const box = $('alert');
  text(box, msg);
  box.className = 'alert' + (kind ? ' ' + kind : '');
  show(box, !!msg);
}

function clearAlert() {
  showAlert('');
}

function transientAlert(msg) {
  showAlert(msg, 'info');
  state.transientAlert = true;
}

function clearAlertIfTransient() {
  if (!state.transientAlert) return;
  clearAlert();
  state.transientAlert = false;
}

function announce(msg) {
  const el = $('announce');
  text(el, '');
  setTimeout(() => text(el, msg), 50);
}

// ---------------------------------------------------------------------------
// Countdowns: one ticker drives every visible countdown
// ---------------------------------------------------------------------------

const timers = {}; // name -> { at, el, onEnd, progress, total, warn, shown, warned, done }

// `warn`: {seconds, message} said once through the live region when that
// little time is left (a role=timer is not read out on its own).
function setTimer(name, atIso, el, onEnd, progress, totalSeconds, warn) {
  const at = Date.parse(atIso);
  if (isNaN(at)) {
    delete timers[name];
    text(el, '–');
    return;
  }
  if (timers[name] && timers[name].at === at && timers[name].el === el) return; // already running
  timers[name] = { at, el, onEnd, progress, total: totalSeconds, warn, done: false };
  tick();
}

function stopTimer(name) {
  delete timers[name];
}

function tick() {
  for (const t of Object.values(timers)) {
    const left = (t.at - now()) / 1000;
    const shown = fmtCountdown(left);
    if (shown !== t.shown) {
      t.shown = shown;
      text(t.el, shown);
    }
    if (t.warn) {
      const urgent = left <= t.warn.seconds;
      t.el.classList.toggle('urgent', urgent);
      if (urgent && !t.warned && left > 0) {
        t.warned = true;
        announce(t.warn.message);
      }
    }
    if (t.progress && t.total > 0) {
      t.progress.max = t.total;
      t.progress.value = Math.max(0, Math.min(t.total, left));
    }
    if (left <= 0 && !t.done) {
      t.done = true;
      if (t.onEnd) t.onEnd();
    }
  }
}

// ---------------------------------------------------------------------------
// The sale itself
// ---------------------------------------------------------------------------

function renderSale() {
  const sale = state.sale;
  if (!sale) return;
  text($('sale-name'), sale.name);
  document.title = sale.name + ' · floodgate';
  const meta = $('sale-meta');
  clear(meta);
  meta.appendChild(badge(sale.state, sale.mode));
  meta.appendChild(document.createTextNode(' ' + saleMetaText(sale)));
}

/** Loads the sale; resolves to it, or null when there is no such sale; rejects with the answer otherwise. */
async function fetchSale() {
  const r = await api('GET', path('sales', state.saleId));
  if (r.ok && r.data) {
    state.sale = r.data;
    // Difficulty 0 in the sale's view: joins need no challenge (an older
    // server says nothing: ask). Once a join was refused for want of one,
    // keep asking.
    const ch = r.data.challenge;
    if (state.challengeNeeded !== true) state.challengeNeeded = ch && ch.difficulty_bits === 0 ? false : null;
    renderSale();
    return state.sale;
  }
  if (r.status === 404) return null;
  throw r;
}

function refreshSaleSoon(ms) {
  setTimeout(() => fetchSale().catch(() => {}), ms);
}

// ---------------------------------------------------------------------------
// Terminal and informational screens
// ---------------------------------------------------------------------------

function showEnd(title, body, button) {
  stopPolling();
  stopSolving();
  stopTimer('admission');
  text($('end-title'), title);
  text($('end-text'), body);
  const btn = $('end-btn');
  if (button) {
    text(btn, button.label);
    btn.onclick = button.action;
    show(btn, true);
  } else {
    btn.onclick = null;
    show(btn, false);
  }
  setView('end');
}

function soldOut(keepChecking) {
  showEnd('Sold out', 'Sorry, every ticket for this sale has been sold.' +
    (keepChecking ? ' We’ll keep checking in case tickets come back.' : ''));
  if (state.sale && state.sale.state !== 'sold_out') {
    state.sale.state = 'sold_out';
    renderSale();
  }
}

function closed() {
  showEnd('This sale has closed', 'Tickets for this sale are no longer on offer.');
}

/** This visitor's network is refused (403 access_denied): say so, and stop asking. */
function denied() {
  showEnd('Your network can’t join this sale', plainError({ code: 'access_denied' }, 403));
}

/** An admin took the place away (status `removed`, or 403 place_removed on a hold). */
function placeRemoved() {
  showEnd('Your place was removed', plainError({ code: 'place_removed' }, 403));
}

function lotteryClosed() {
  showEnd('Entries are closed', 'The lottery has been drawn, so new entries are closed.');
}

function holdEnded(body) {
  stopTimer('hold');
  remember({ hold: null });
  showEnd('Your hold has expired', body || 'The time to pay ran out, so the tickets went back on sale.',
    { label: 'Check my place', action: resumeQueue });
}

// ---------------------------------------------------------------------------
// Joining
// ---------------------------------------------------------------------------

function showJoin(message) {
  stopPolling();
  const sale = state.sale;
  if (sale && sale.mode === 'lottery') {
    text($('join-title'), 'Enter the lottery');
    text($('join-text'), 'Winners are drawn at random when entries close' +
      (sale.starts_at ? ' (' + fmtDate(sale.starts_at) + ')' : '') + '. It doesn’t matter when you enter.');
    text($('join-btn'), 'Enter the lottery');
  } else if (sale && sale.waiting_room === false) {
    text($('join-title'), 'Get tickets');
    text($('join-text'), sale.state === 'scheduled'
      ? 'The sale opens ' + fmtDate(sale.starts_at) + '.'
      : 'Tickets go to whoever holds them first.');
    text($('join-btn'), 'Get tickets');
  } else if (sale && sale.state === 'scheduled') {
    text($('join-text'), 'The sale opens ' + fmtDate(sale.starts_at) +
      '. Join the waiting room now and you’ll get a place in line when it opens.');
  }
  if (message) showAlert(message, 'info');
  else clearAlert();
  setView('join');
}

// A fresh join first proves some work (SPEC §4a): fetch a challenge, solve
// it in a worker while the page says "Checking your browser…", join with
// {challenge, nonce}. A join with the stored queue token needs none, and
// neither does a sale whose view says difficulty 0 (until a join is refused
// with challenge_required: then the page asks after all).

function checkStatus(message) {
  text($('check-status'), message);
}

function showCheck(bits) {
  const expected = expectedAttempts(bits);
  const bar = $('check-progress');
  bar.max = 1;
  bar.value = 0;
  bar.setAttribute('aria-valuetext', checkProgressText(0, expected));
  text($('check-count'), checkProgressText(0, expected));
  checkStatus('Checking your browser… This takes a moment.');
  show($('check'), true);
  document.body.dataset.check = 'solving';
}

function checkProgress(attempts, bits, startedAt) {
  const expected = expectedAttempts(bits);
  const bar = $('check-progress');
  // The chance a solution has turned up by now: moves steadily, never
  // jumps back, and is honest when a solve runs long.
  bar.value = 1 - Math.exp(-attempts / expected);
  const words = checkProgressText(attempts, expected);
  bar.setAttribute('aria-valuetext', words);
  text($('check-count'), words);
  if (performance.now() - startedAt > 8000 && !state.checkSlowSaid) {
    state.checkSlowSaid = true;
    checkStatus('Still checking your browser… Thanks for waiting; keep this page open.');
  }
}

function hideCheck(outcome) {
  show($('check'), false);
  document.body.dataset.check = outcome;
}

function stopSolving() {
  if (!state.solver) return;
  state.solver.cancel();
  state.solver = null;
  hideCheck('cancelled');
}

/**
 * The body of a fresh join: `{body}` (undefined body when no challenge is
 * asked), `{answer}` when the challenge request was refused (handled like a
 * refused join), or `{handled: true}` when the page already said what went
 * wrong.
 */
async function solveChallenge() {
  if (state.challengeNeeded === false) return { body: undefined };
  let r;
  try {
    r = await api('GET', path('sales', state.saleId, 'challenge'));
  } catch {
    showAlert('Could not reach the ticket service. Check your connection and try again.');
    return { handled: true };
  }
  // A server without proof of work has no such route (and for a sale that
  // does not exist, the join says so).
  if (r.status === 404) return { body: undefined };
  if (!r.ok || !r.data || typeof r.data.challenge !== 'string') return { answer: r };
  const { challenge } = r.data;
  const bits = Number(r.data.difficulty_bits) || 0;
  if (bits <= 0) return { body: { challenge, nonce: '0' } };

  showCheck(bits);
  state.checkSlowSaid = false;
  const startedAt = performance.now();
  const solver = startSolving({ challenge, bits, onProgress: (n) => checkProgress(n, bits, startedAt) });
  state.solver = solver;
  let found;
  try {
    found = await solver.promise;
  } catch (err) {
    if (state.solver === solver) state.solver = null;
    if (err && err.code === 'cancelled') return { handled: true };
    hideCheck('failed');
    if (err && err.code === 'unsupported') {
      showAlert('This browser can’t run the quick check this sale asks of everyone who joins: it needs a secure (https) connection and an up-to-date browser. Open the page over https, or try another browser.');
    } else {
      showAlert('Your browser could not finish the check this sale asks for. Please reload the page and try again.');
    }
    return { handled: true };
  }
  state.solver = null;
  state.solveMs = Math.round(found.ms);
  document.body.dataset.solveMs = String(state.solveMs);
  document.body.dataset.solveBits = String(bits);
  document.body.dataset.solveAttempts = String(found.attempts);
  document.body.dataset.solveWhere = found.where;
  document.body.dataset.check = 'solved';
  checkStatus('Browser checked. Joining…');
  return { body: { challenge, nonce: found.nonce } };
}

/** Handles a refused join (or challenge request); `retry` joins again. */
function joinRefused(r, retry) {
  const e = errorOf(r);
  if (e.code === 'sold_out') return soldOut(false);
  if (e.code === 'sale_closed') return closed();
  if (e.code === 'lottery_drawn') return lotteryClosed();
  if (e.code === 'access_denied') return denied();
  if (r.status === 429 || r.status === 503) {
    const wait = retryAfterSeconds(r.res) || 3;
    showAlert(explain(r) + ' Trying again in ' + plural(wait, 'second', 'seconds') + '…', 'info');
    busy($('join-btn'), true);
    setTimeout(retry, wait * 1000);
    return;
  }
  showAlert(explain(r));
}

async function join(challengeTry = 1) {
  if (state.solver) return; // already checking
  const btn = $('join-btn');
  busy(btn, true);
  clearAlert();
  const hadToken = state.queueToken;
  let body;
  if (!hadToken) {
    const solved = await solveChallenge();
    if (solved.handled) return busy(btn, false);
    if (solved.answer) {
      busy(btn, false);
      return joinRefused(solved.answer, () => join(challengeTry));
    }
    body = solved.body;
  }
  let r;
  try {
    r = await api('POST', path('sales', state.saleId, 'queue'), { token: state.queueToken, body });
  } catch {
    r = null;
  }
  busy(btn, false);
  if (body && body.challenge) show($('check'), false);
  if (!r) return showAlert('Could not reach the ticket service. Check your connection and try again.');
  if (r.status === 200 || r.status === 201) {
    const fresh = r.status === 201 || state.startAhead == null;
    remember({ queueToken: r.data.queue_token, startAhead: fresh ? r.data.ahead : state.startAhead });
    renderStatus(r.data);
    if (state.polling || state.phase === 'queue' || state.phase === 'buy') schedulePoll(r.data);
    return;
  }
  const e = errorOf(r);
  if (CHALLENGE_RETRY.has(e.code)) {
    // Expired while solving, used already, or the sale turned the check on:
    // a fresh challenge, a few times at most.
    state.challengeNeeded = true;
    if (hadToken && e.code === 'challenge_required') forgetPlace();
    if (challengeTry < CHALLENGE_TRIES) return join(challengeTry + 1);
    return showAlert(explain(r));
  }
  if ((r.status === 401 || r.status === 403) && hadToken && e.code !== 'access_denied') {
    // A token from an earlier visit that no longer works: start afresh.
    forgetPlace();
    return join(challengeTry);
  }
  joinRefused(r, () => join(challengeTry));
}

// ---------------------------------------------------------------------------
// Polling the place in line
// ---------------------------------------------------------------------------

function stopPolling() {
  state.polling = false;
  if (state.pollTimer) clearTimeout(state.pollTimer);
  state.pollTimer = null;
}

function schedulePoll(view, overrideMs) {
  if (state.pollTimer) clearTimeout(state.pollTimer);
  state.polling = true;
  let ms = overrideMs != null ? overrideMs : Math.max(1000, (view && view.poll_after_ms) || 2000);
  // A little jitter so a crowd that joined together does not poll in step.
  ms = Math.round(ms * (1 + Math.random() * 0.1));
  state.pollTimer = setTimeout(poll, ms);
}

async function poll() {
  state.pollTimer = null;
  if (!state.queueToken) {
    state.polling = false;
    return showJoin();
  }
  let r;
  try {
    r = await api('GET', path('sales', state.saleId, 'queue', 'status'), { token: state.queueToken });
  } catch {
    // Offline or the server is unreachable: keep the place, try again.
    state.pollBackoff = Math.min(state.pollBackoff * 2, 30000);
    transientAlert('Connection lost. Trying again… you keep your place.');
    schedulePoll(null, state.pollBackoff);
    return;
  }
  if (!state.polling && state.phase !== 'loading') return;
  if (r.ok && r.data) {
    state.pollBackoff = 2000;
    if (['queue', 'loading', 'buy', 'end'].includes(state.phase)) clearAlertIfTransient();
    renderStatus(r.data);
    if (state.polling || state.phase === 'loading') schedulePoll(r.data);
    return;
  }
  if (errorOf(r).code === 'access_denied') return denied();
  if (r.status === 401 || r.status === 403) {
    forgetPlace();
    return showJoin('Your place in line could not be found any more. Please join again.');
  }
  if (r.status === 404) return showEnd('Sale not found', 'This sale does not exist or is no longer on offer.');
  if (r.status === 429 || r.status === 503) {
    const wait = retryAfterSeconds(r.res) || 2;
    transientAlert('The ticket service is very busy. Checking again shortly… you keep your place.');
    return schedulePoll(null, wait * 1000);
  }
  state.pollBackoff = Math.min(state.pollBackoff * 2, 30000);
  schedulePoll(null, state.pollBackoff);
}

function renderStatus(v) {
  switch (v.state) {
    case 'waiting': return renderWaiting(v);
    case 'admitted':
    case 'won': return renderAdmitted(v);
    case 'lost':
      return showEnd('Not this time', 'You were not drawn in the lottery. Thanks for taking part.');
    case 'expired':
      return showEnd('Your place has expired',
        'You were away too long, or your turn ran out before tickets were held, so your place went to the next person.',
        { label: 'Join again', action: () => { forgetPlace(); showJoin(); join(); } });
    case 'sold_out':
      soldOut(true);
      state.polling = true; // keep checking slowly: cancellations can bring tickets back
      return;
    case 'closed':
      return closed();
    case 'removed':
      return placeRemoved();
    default:
      return showEnd('Unexpected answer', 'The ticket service said “' + v.state + '”. Please reload the page.');
  }
}

function renderWaiting(v) {
  const sale = state.sale;
  state.admission = null;
  stopTimer('admission');
  const lottery = sale && sale.mode === 'lottery';
  const ahead = v.ahead == null ? null : v.ahead;
  const position = v.position == null ? null : v.position;
  if (ahead != null && (state.startAhead == null || ahead > state.startAhead)) remember({ startAhead: ahead });

  text($('queue-title'), queueTitle(v, sale));
  // In a pre-queue that is shuffled at the start, the join order means
  // nothing yet: show no number until the draw.
  const shuffled = v.prequeue && sale && sale.shuffle_prequeue;
  const showPlace = !lottery && !shuffled && position != null;
  show($('q-place'), showPlace);
  show($('q-progress-box'), showPlace && !v.prequeue);
  show($('q-facts'), showPlace);
  text($('q-number'), position != null ? fmtNumber(position) : '–');
  text($('q-ahead'), ahead != null ? fmtNumber(ahead) : '–');
  text($('q-wait'), v.paused ? 'paused' : (v.prequeue ? 'after the start' : fmtWait(v.estimated_wait_seconds)));

  if (showPlace && !v.prequeue) {
    const start = Math.max(state.startAhead || 0, ahead || 0);
    const bar = $('q-progress');
    bar.max = start + 1;
    bar.value = start + 1 - (ahead || 0) - 0.5;
    bar.setAttribute('aria-valuetext', aheadText(ahead));
  }

  const live = waitingLiveText(v, sale);
  if (live !== state.lastLive) {
    state.lastLive = live;
    text($('q-live'), live);
  }

  const pre = v.prequeue || (sale && sale.state === 'scheduled');
  const countdown = !!(pre && sale && sale.starts_at);
  show($('q-prequeue'), countdown);
  if (countdown) {
    text($('q-prequeue-lead'), lottery ? 'Entries close in' : 'The sale opens in');
    text($('q-prequeue-note'), lottery
      ? 'The draw happens then.'
      : (sale.shuffle_prequeue ? 'Everyone who joins before then gets a fair, random place.' : ''));
    setTimer('prequeue', sale.starts_at, $('q-countdown'), () => {
      text($('q-countdown'), 'now');
      // The server turns the sale on: pick up the new state soon.
      fetchSale().catch(() => {});
      if (state.polling) schedulePoll(null, 1000);
    });
  } else {
    stopTimer('prequeue');
  }
  show($('q-paused'), !!v.paused);
  setView('queue');
}

function renderAdmitted(v) {
  const sale = state.sale;
  stopTimer('prequeue');
  if (v.admission_token) state.admission = { token: v.admission_token, expiresAt: v.admission_expires_at };
  text($('buy-title'), v.state === 'won' ? 'You won! Choose your tickets' : 'It’s your turn');
  // Without a waiting room every poll grants a fresh admission, so there is
  // no deadline worth showing.
  if (v.admission_expires_at && !(sale && sale.waiting_room === false)) {
    show($('buy-deadline'), true);
    setTimer('admission', v.admission_expires_at, $('buy-countdown'), () => {
      // Ask the server what happened rather than guessing.
      if (state.phase === 'buy') schedulePoll(null, 500);
    }, null, 0, { seconds: 30, message: '30 seconds left to choose your tickets.' });
  } else {
    show($('buy-deadline'), false);
  }
  if (state.phase !== 'buy') {
    buildBuyForm();
    setView('buy');
    // Fresh availability for the picker; not needed for the hold itself.
    fetchSale().then(() => { if (state.phase === 'buy') buildBuyForm(true); }).catch(() => {});
  }
}

// ---------------------------------------------------------------------------
// Choosing and holding tickets
// ---------------------------------------------------------------------------

/** The price category chosen in the form (a sale with several), or null. */
function chosenCategory() {
  const cats = saleCategories(state.sale);
  if (cats.length < 2) return null;
  return cats.find((c) => c.name === state.category) || null;
}

/**
 * The price categories of a sale with several, as radio buttons (name,
 * price, what is left), updated in place when the same categories come
 * back so a focused button keeps its focus. The choice stays while it has
 * tickets; otherwise the first category that has some is chosen.
 */
function renderCategoryChoice(cats, currency) {
  const box = $('cat-options');
  const same = box.children.length === cats.length &&
    cats.every((c, i) => box.children[i].dataset.category === c.name);
  if (!same) {
    clear(box);
    cats.forEach((c, i) => {
      const label = node('label', 'choice');
      label.dataset.category = c.name;
      const input = node('input');
      input.type = 'radio';
      input.name = 'category';
      input.value = c.name;
      input.id = 'cat-' + i;
      input.addEventListener('change', () => {
        state.category = c.name;
        buildBuyForm();
      });
      label.appendChild(input);
      label.appendChild(node('span', 'choice-name', c.name));
      label.appendChild(node('span', 'choice-price'));
      label.appendChild(node('span', 'choice-left'));
      box.appendChild(label);
    });
  }
  let chosen = cats.find((c) => c.name === state.category && c.available > 0);
  if (!chosen) chosen = cats.find((c) => c.available > 0);
  state.category = chosen ? chosen.name : null;
  cats.forEach((c, i) => {
    const label = box.children[i];
    const input = label.querySelector('input');
    text(label.querySelector('.choice-price'), fmtMoney({ amount: c.amount, currency }));
    text(label.querySelector('.choice-left'), categoryAvailabilityText(c));
    input.disabled = !(c.available > 0);
    input.checked = c.name === state.category;
    label.classList.toggle('unavailable', input.disabled);
  });
}

/** The price list of a reserved-seating sale (the seat decides the category). */
function renderPriceList(cats, currency) {
  const body = $('price-list').querySelector('tbody');
  clear(body);
  for (const c of cats) {
    const tr = node('tr');
    tr.appendChild(node('th', null, c.name)).setAttribute('scope', 'row');
    tr.appendChild(node('td', null, fmtMoney({ amount: c.amount, currency })));
    tr.appendChild(node('td', null, categoryAvailabilityText(c)));
    body.appendChild(tr);
  }
}

/** "2 × ¥6,800 = ¥13,600" under the quantity, for a priced general-admission sale. */
function renderEstimate() {
  const sale = state.sale;
  const cats = saleCategories(sale);
  const reserved = !!(sale && sale.seating === 'reserved');
  const cat = cats.length === 1 ? cats[0] : chosenCategory();
  const words = !reserved && cat ? estimateText(Number($('qty').value) || 1, cat.amount, sale.currency) : '';
  const el = $('buy-estimate');
  text(el, words ? (cats.length > 1 ? cat.name + ': ' : 'Price: ') + words : '');
  show(el, !!words);
}

/** Whether the sale has sessions (SPEC §3): the buyer chooses a date and a time to hold in. */
function hasSessions() {
  const sale = state.sale;
  return !!(sale && sale.session_count > 0);
}

/** The date-and-time picker, made on first use. */
function sessionPicker() {
  if (!state.picker) {
    state.picker = createSessionPicker({
      saleId: state.saleId,
      timeZone: state.sale && state.sale.time_zone,
      onChange: () => buildBuyForm(true),
      announce,
    });
  }
  return state.picker;
}

/** The session chosen in the buy form, or null. */
function chosenSlot() {
  return hasSessions() && state.picker ? state.picker.chosen() : null;
}

function buildBuyForm(refresh) {
  const sale = state.sale;
  const limit = Math.max(1, (sale && sale.per_user_limit) || 1);
  const cats = saleCategories(sale);
  const reserved = !!(sale && sale.seating === 'reserved');
  const sessions = hasSessions() && !reserved;
  document.body.dataset.sessions = sessions ? 'true' : 'false';
  show($('session-box'), sessions);
  if (sessions) sessionPicker().start();
  show($('qty-field'), !reserved);
  show($('seats-field'), reserved);
  // Several categories: the buyer chooses one (best available within it).
  // Reserved seating: the seats decide, so the prices are a list to read.
  const choose = !reserved && cats.length > 1;
  show($('cat-field'), choose);
  show($('price-list-box'), reserved && cats.length > 0);
  document.body.dataset.priced = cats.length ? 'true' : 'false';
  if (choose) renderCategoryChoice(cats, sale.currency);
  if (reserved) {
    if (cats.length) renderPriceList(cats, sale.currency);
    text($('seats-hint'), 'Type seat labels as section/row/seat, separated by commas, e.g. A/1/3, A/1/4. Up to ' +
      plural(limit, 'seat', 'seats') + ' per person.');
    renderEstimate();
    return;
  }
  const cat = choose ? chosenCategory() : null;
  let available = sale && sale.availability ? sale.availability.available : null;
  if (choose) available = cat ? cat.available : 0;
  // With sessions, what is left at the chosen time (the sale's figure and
  // a category's are across every time).
  const slot = sessions ? chosenSlot() : null;
  if (sessions) available = slot ? (choose ? Math.min(available, slot.available) : slot.available) : null;
  let max = limit;
  if (available != null && available > 0) max = Math.min(limit, available);
  const select = $('qty');
  const previous = Number(select.value) || 1;
  if (!(refresh && select.options.length === max)) {
    clear(select);
    for (let i = 1; i <= max; i++) {
      const opt = node('option', null, plural(i, 'ticket', 'tickets'));
      opt.value = String(i);
      select.appendChild(opt);
    }
    select.value = String(Math.min(previous, max));
  }
  text($('qty-hint'), 'Up to ' + plural(limit, 'ticket', 'tickets') + ' per person.' +
    (available != null && available < limit
      ? ' ' + (available > 0 ? fmtNumber(available) + ' left' + (cat ? ' in ' + cat.name : '') + (slot ? ' at this time.' : ' right now.')
        : (choose ? 'No category has tickets right now.' : ''))
      : ''));
  renderEstimate();
}

function holdRequestBody() {
  const sale = state.sale;
  if (sale && sale.seating === 'reserved') {
    const parsed = parseSeats($('seats').value, sale.per_user_limit);
    return parsed.error ? parsed : { body: { seats: parsed.seats } };
  }
  let slot = null;
  if (hasSessions()) {
    slot = chosenSlot();
    if (!slot) return { error: 'Choose a date and a time first.', field: 'session' };
  }
  const q = Number($('qty').value);
  if (!(q >= 1)) return { error: 'Choose how many tickets you want.' };
  const cat = chosenCategory();
  const body = cat ? { quantity: q, category: cat.name } : { quantity: q };
  if (slot) body.session = String(slot.id);
  return { body, slot };
}

async function hold(event) {
  event.preventDefault();
  clearAlert();
  const sale = state.sale;
  const btn = $('hold-btn');
  const req = holdRequestBody();
  if (req.error) {
    showAlert(req.error);
    if (req.field === 'session') return state.picker && state.picker.focus();
    const field = sale && sale.seating === 'reserved' ? $('seats') : $('qty');
    field.setAttribute('aria-invalid', 'true');
    field.focus();
    return;
  }
  $('seats').removeAttribute('aria-invalid');
  if (!state.admission || !state.admission.token) {
    showAlert('Your turn has not come yet, or it ran out. Checking your place…', 'info');
    return schedulePoll(null, 0);
  }
  // One key per attempt; a retry after a lost answer reuses it, so the
  // server answers it instead of holding twice.
  const bodyJson = JSON.stringify(req.body);
  const key = state.pendingHold && state.pendingHold.body === bodyJson ? state.pendingHold.key : randomKey();
  state.pendingHold = { key, body: bodyJson };
  busy(btn, true);
  let r;
  try {
    r = await api('POST', path('sales', state.saleId, 'holds'), {
      token: state.admission.token,
      headers: { 'Idempotency-Key': key },
      body: req.body,
    });
  } catch {
    busy(btn, false);
    showAlert('Could not reach the ticket service. Your request may not have arrived: press “Hold tickets” again to retry safely.');
    return;
  }
  busy(btn, false);
  if (r.status === 201 || r.status === 200) {
    state.pendingHold = null;
    const h = r.data;
    const session = req.slot ? sessionSummary(req.slot, state.picker.timeZone()) : null;
    remember({ hold: { id: h.id, hold_token: h.hold_token, expires_at: h.expires_at, units: h.units, quantity: h.quantity, total: h.total, session } });
    stopPolling();
    // Counts are cached for about a second: refresh the header after.
    refreshSaleSoon(1500);
    return showHold(state.hold);
  }
  if (r.status < 500 && r.status !== 429) state.pendingHold = null;
  const e = errorOf(r);
  if (e.code === 'sold_out') return soldOut(false);
  if (e.code === 'sale_closed') return closed();
  if (e.code === 'access_denied') return denied();
  if (e.code === 'place_removed') return placeRemoved();
  if (r.status === 401 || r.status === 403) {
    showAlert('Your turn ran out before the tickets were held. Checking your place…', 'info');
    return schedulePoll(null, 0);
  }
  let msg = explain(r, { limit: sale && sale.per_user_limit, category: req.body.category, session: !!req.body.session });
  if (r.status === 429 || r.status === 503) {
    const wait = retryAfterSeconds(r.res);
    if (wait) msg += ' (try again in ' + plural(wait, 'second', 'seconds') + ')';
  }
  showAlert(msg);
  if (e.code === 'insufficient_stock') fetchSale().then(() => buildBuyForm()).catch(() => {});
  // The time chosen may have filled up, paused, closed or gone: fresh counts.
  if (req.body.session && state.picker && (r.status === 404 || r.status === 409 || r.status === 410)) state.picker.refresh();
}

// ---------------------------------------------------------------------------
// The hold: countdown, pay, release
// ---------------------------------------------------------------------------

/** Units as list items: the label, and the category and price of a priced one. */
function renderUnits(list, units, currency) {
  clear(list);
  for (const u of units || []) {
    const li = node('li');
    li.appendChild(node('span', 'unit-label', u.label));
    const price = unitPriceText(u, currency);
    if (price) {
      li.appendChild(document.createTextNode(' '));
      li.appendChild(node('span', 'unit-price', price));
    }
    list.appendChild(li);
  }
}

/** The date and time of a hold's or an order's session (hidden without one). */
function renderSession(el, s) {
  const date = s && sessionDate(s);
  let words = '';
  if (date) {
    words = dayLabel(date) + ', ' + slotText(s) + (s.time_zone ? ' (' + s.time_zone.replace(/_/g, ' ') + ' time)' : '');
  } else if (s && s.id != null) {
    words = 'Session ' + s.id;
  }
  text(el, words);
  show(el, !!words);
}

/**
 * The session of a hold or an order the API names by id (`id`), with the
 * times kept with it in this browser (`stored`), or looked up.
 */
async function sessionFor(id, stored) {
  if (id == null || id === '') return stored || null;
  if (stored && String(stored.id) === String(id) && sessionDate(stored)) return stored;
  const found = await findSession(state.saleId, id);
  return found ? sessionSummary(found, state.sale && state.sale.time_zone) : { id: String(id) };
}

/** A total line (`{amount, currency}`), hidden for an unpriced hold or order. */
function renderTotal(box, amountEl, total) {
  const words = fmtMoney(total);
  text(amountEl, words);
  show(box, !!words);
}

function showHold(h) {
  clearAlert();
  const currency = (h.total && h.total.currency) || (state.sale && state.sale.currency);
  renderUnits($('hold-units'), h.units, currency);
  renderTotal($('hold-total'), $('hold-total-amount'), h.total);
  renderSession($('hold-session'), h.session);
  text($('hold-title'), heldTitle(h.quantity, (h.units || []).length));
  const ttl = (state.sale && state.sale.hold_ttl_seconds) || Math.max(1, (Date.parse(h.expires_at) - now()) / 1000);
  setTimer('hold', h.expires_at, $('hold-countdown'), () => holdEnded(), $('hold-progress'), ttl,
    { seconds: 60, message: 'One minute left to pay before the tickets go back on sale.' });
  busy($('pay-btn'), false);
  busy($('release-btn'), false);
  setView('hold');
}

function resumeQueue() {
  clearAlert();
  setView('loading');
  schedulePoll(null, 0);
}

async function pay() {
  const h = state.hold;
  if (!h) return;
  const btn = $('pay-btn');
  busy(btn, true);
  clearAlert();
  let r;
  try {
    r = await api('POST', path('holds', h.id, 'dev-checkout'), { token: h.hold_token });
  } catch {
    busy(btn, false);
    showAlert('Could not reach the ticket service. Please try again; you will not be charged twice.');
    return;
  }
  if (r.ok && r.data && r.data.order) {
    const order = r.data.order;
    stopTimer('hold');
    remember({ order: { id: order.id, hold_token: h.hold_token, session: h.session || null }, hold: null });
    return showOrder(order, true);
  }
  busy(btn, false);
  const e = errorOf(r);
  if (r.status === 404 && /dev checkout/i.test(e.message)) {
    return showAlert('Payment is handled by the site that sent you here; this page cannot take payments. Your tickets stay held until the countdown ends.', 'info');
  }
  if (e.code === 'hold_expired' || e.code === 'refund_required') return holdEnded(explain(r));
  showAlert(explain(r));
}

async function release() {
  const h = state.hold;
  if (!h) return;
  const btn = $('release-btn');
  busy(btn, true);
  clearAlert();
  let r;
  try {
    r = await api('DELETE', path('holds', h.id), { token: h.hold_token });
  } catch {
    busy(btn, false);
    showAlert('Could not reach the ticket service. Please try again.');
    return;
  }
  busy(btn, false);
  const e = errorOf(r);
  if (r.ok || e.code === 'hold_expired') {
    stopTimer('hold');
    remember({ hold: null });
    return showEnd('Tickets released', 'You let the tickets go; they are back on sale for others.');
  }
  if (e.code === 'hold_confirmed') return restore();
  showAlert(explain(r));
}

// ---------------------------------------------------------------------------
// The order
// ---------------------------------------------------------------------------

function showOrder(order, fresh) {
  const currency = (order.total && order.total.currency) || (state.sale && state.sale.currency);
  renderUnits($('order-units'), order.units, currency);
  renderTotal($('order-total'), $('order-total-amount'), order.total);
  const kept = state.order && state.order.id === order.id ? state.order.session : null;
  renderSession($('order-session'), order.session != null && !(kept && String(kept.id) === String(order.session))
    ? { id: String(order.session) } : kept);
  text($('order-total-label'), order.state === 'cancelled' ? 'Order total' : 'Total paid');
  const n = order.quantity || (order.units || []).length;
  text($('order-id'), order.id);
  if (order.state === 'cancelled') {
    text($('order-title'), 'Order cancelled');
    text($('order-summary'), 'This order was cancelled; its tickets went back on sale.');
  } else {
    text($('order-title'), 'Order confirmed');
    text($('order-summary'), 'You bought ' + plural(n, 'ticket', 'tickets') +
      (state.sale ? ' for ' + state.sale.name : '') + '. Keep your order number.');
  }
  $('view-order').setAttribute('data-state', order.state || '');
  setView('order');
  if (fresh) {
    // The confirmation above came with the payment; read the order back as
    // stored, which is what a reload will show too.
    const o = state.order;
    api('GET', path('orders', order.id), { token: o && o.hold_token }).then((r) => {
      if (r.ok && r.data) showOrder(r.data, false);
    }, () => {});
    refreshSaleSoon(2000);
  }
}

// ---------------------------------------------------------------------------
// After a reload: pick up where the visitor was
// ---------------------------------------------------------------------------

async function restoreOrder() {
  const o = state.order;
  let r;
  try {
    r = await api('GET', path('orders', o.id), { token: o.hold_token });
  } catch {
    return showEnd('Could not load your order', 'Could not reach the ticket service.', { label: 'Try again', action: restore });
  }
  if (r.ok && r.data) {
    const session = await sessionFor(r.data.session, o.session);
    if (session) remember({ order: { ...o, session } });
    return showOrder(r.data, false);
  }
  if (r.status === 401 || r.status === 403 || r.status === 404) {
    remember({ order: null });
    return restore();
  }
  showEnd('Could not load your order', explain(r), { label: 'Try again', action: restore });
}

async function restoreHold() {
  const stored = state.hold;
  let r;
  try {
    r = await api('GET', path('holds', stored.id), { token: stored.hold_token });
  } catch {
    return showHold(stored);
  }
  if (r.ok && r.data) {
    const h = r.data;
    if (h.state === 'held' || h.state === 'active') {
      const session = await sessionFor(h.session, stored.session);
      remember({ hold: { id: h.id, hold_token: stored.hold_token, expires_at: h.expires_at, units: h.units, quantity: h.quantity, total: h.total, session } });
      return showHold(state.hold);
    }
    if (h.state === 'confirmed' && h.order_id) {
      remember({ order: { id: h.order_id, hold_token: stored.hold_token, session: stored.session || null }, hold: null });
      return restore();
    }
    if (h.state === 'expired') return holdEnded();
    remember({ hold: null });
    return restore();
  }
  if (r.status === 401 || r.status === 403 || r.status === 404) {
    remember({ hold: null });
    return restore();
  }
  // Busy or down: show what we know and let the countdown run.
  showHold(stored);
}

function restore() {
  if (state.order && state.order.id) return restoreOrder();
  if (state.hold && state.hold.id) return restoreHold();
  if (state.queueToken) {
    setView('loading');
    state.polling = true;
    return poll();
  }
  const sale = state.sale;
  if (!sale) return;
  if (sale.state === 'sold_out') return soldOut(false);
  if (sale.state === 'closed') return closed();
  if (sale.mode === 'lottery' && sale.lottery_drawn_at) return lotteryClosed();
  showJoin();
}

// ---------------------------------------------------------------------------
// Start
// ---------------------------------------------------------------------------

export function salePage() {
  state.saleId = decodeURIComponent(location.pathname.split('/')[2] || '');
  loadStored();

  $('join-btn').addEventListener('click', () => join());
  $('buy-form').addEventListener('submit', hold);
  $('pay-btn').addEventListener('click', pay);
  $('release-btn').addEventListener('click', release);
  $('seats').addEventListener('input', (e) => e.target.removeAttribute('aria-invalid'));
  $('qty').addEventListener('change', renderEstimate);

  // Four times a second, so the shown second changes on time; text is only
  // written when it changes.
  setInterval(tick, 250);

  // Background tabs get throttled timers: check at once on return, so the
  // place is never lost to a sleeping tab.
  const pollNowIfWaiting = () => {
    if (state.polling && (state.phase === 'queue' || state.phase === 'buy')) schedulePoll(null, 0);
  };
  document.addEventListener('visibilitychange', () => { if (!document.hidden) pollNowIfWaiting(); });
  window.addEventListener('online', pollNowIfWaiting);

  if (!state.saleId) return showEnd('Sale not found', 'This address does not name a sale.');
  fetchSale().then((sale) => {
    if (!sale) return showEnd('Sale not found', 'This sale does not exist or is no longer on offer.');
    restore();
  }, (r) => {
    // The sale's details could not be loaded; a returning visitor can still
    // follow their place, a new one is asked to retry.
    if (state.queueToken || state.hold || state.order) return restore();
    showEnd('The ticket service is busy', r && r.status ? explain(r) : 'Could not reach the ticket service.',
      { label: 'Try again', action: () => location.reload() });
  });
}
