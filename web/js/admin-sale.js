// The selected sale in the admin console: its live figures, charts and
// tables (rendered at each refresh), and its controls (pause, resume,
// close, admission settings, admit N, next stage, lottery draw, audit),
// each behind a confirmation step. Controls that change the sale ask the
// console to refresh at once so the figures follow.

import { explain, path } from './api.js';
import { fmtDate, fmtNumber, saleCategories } from './format.js';
import { $, badge, busy, clear, node, show, text } from './dom.js';
import { adminApi } from './admin-api.js';
import { admissionBody, auditVerdict, categoryRow, countsText, fmtRate, saleFigures } from './admin-format.js';
import { drawChart } from './admin-chart.js';
import { confirmStep } from './admin-confirm.js';

/** Says what a control did (a polite live region next to the controls). */
export function say(msg, kind) {
  const el = $('action-status');
  el.className = 'action-status' + (kind ? ' ' + kind : '');
  text(el, msg);
}

// --- rendering ------------------------------------------------------------------

function renderStats(sale, detail, hist, now) {
  const dl = $('stats');
  clear(dl);
  for (const [label, value, hint] of saleFigures(sale, detail, hist && hist.counts, now)) {
    const div = node('div');
    div.appendChild(node('dt', null, label));
    const dd = node('dd', null, value);
    dd.dataset.stat = label;
    div.appendChild(dd);
    if (hint) div.appendChild(node('dd', 'stat-hint', hint));
    dl.appendChild(div);
  }
}

function renderStages(sale) {
  const body = $('stage-table').querySelector('tbody');
  clear(body);
  for (const s of (sale.availability && sale.availability.stages) || []) {
    const tr = node('tr');
    for (const v of [s.stage, s.percent + ' %', s.released ? 'yes' : 'not yet', fmtNumber(s.available), fmtNumber(s.held), fmtNumber(s.sold)]) {
      tr.appendChild(node('td', null, v));
    }
    body.appendChild(tr);
  }
  const stages = (sale.availability && sale.availability.stages) || [];
  const next = stages.find((s) => !s.released);
  text($('stage-hint'), next
    ? 'Stage ' + next.stage + ' of ' + stages.length + ' (' + fmtNumber(next.units) + ' units) is next.'
    : 'Every stage is released.');
  $('next-stage-btn').disabled = !next || sale.state === 'closed';
}

/** The price categories with their price and units by state; hidden for a sale without prices. */
function renderPrices(sale) {
  const cats = saleCategories(sale);
  show($('price-box'), cats.length > 0);
  document.body.dataset.salePriced = cats.length ? 'true' : 'false';
  if (!cats.length) return;
  text($('price-caption'), 'Prices (' + sale.currency + ')');
  const body = $('price-table').querySelector('tbody');
  clear(body);
  for (const c of cats) {
    const tr = node('tr');
    tr.dataset.category = c.name;
    categoryRow(c, sale.currency).forEach((v, i) => {
      const cell = node(i === 0 ? 'th' : 'td', null, v);
      if (i === 0) cell.setAttribute('scope', 'row');
      tr.appendChild(cell);
    });
    body.appendChild(tr);
  }
}

function renderCounts(detail) {
  if (!detail) return text($('counts-line'), '');
  const gate = detail.gate;
  let line = 'Holds: ' + countsText(detail.holds) + '. Orders: ' + countsText(detail.orders) + '.';
  if (gate) line += ' Challenges: ' + fmtNumber(gate.challenges_issued) + ' issued, ' + fmtNumber(gate.challenges_solved) + ' solved.';
  text($('counts-line'), line);
}

function renderLottery(sale) {
  const lottery = sale.mode === 'lottery';
  show($('lottery-control'), lottery);
  if (!lottery) return;
  text($('lottery-commitment'), sale.seed_commitment || '–');
  text($('lottery-seed'), sale.seed || 'not revealed until the draw');
  const drawn = !!sale.lottery_drawn_at;
  const q = sale.queue || {};
  text($('lottery-drawn'), drawn
    ? 'Drawn ' + fmtDate(sale.lottery_drawn_at) + ': ' + fmtNumber(sale.lottery_winners) + ' winner(s)' +
      (q.shuffled_entries != null ? ' of ' + fmtNumber(q.shuffled_entries) + ' entries' : '') + '.'
    : 'Not drawn yet; ' + fmtNumber(q.joined || 0) + ' entries so far.');
  $('draw-btn').disabled = drawn || sale.state === 'closed';
  show($('lottery-verify'), drawn);
}

function renderCharts(hist, now) {
  if (!hist) return;
  drawChart($('chart-queue'), hist.queue, { now, fmt: (v) => fmtNumber(Math.round(v)) });
  drawChart($('chart-rate'), hist.rate, { now, fmt: (v) => fmtRate(v, ''), unit: '/s' });
  drawChart($('chart-sold'), hist.sold, { now, fmt: (v) => fmtNumber(Math.round(v)) });
}

/** Renders everything the console shows of `sale` (its admin view `detail` when loaded). */
export function renderSale(sale, detail, hist, now) {
  text($('sale-title'), sale.name);
  const sub = $('sale-sub');
  clear(sub);
  sub.appendChild(badge(sale.state, sale.mode));
  sub.appendChild(document.createTextNode(' ' + (sale.mode === 'lottery' ? 'Lottery' : 'FIFO') +
    (sale.waiting_room === false ? ', no waiting room' : '') +
    (sale.mode !== 'lottery' && sale.shuffle_prequeue ? ', pre-queue shuffled' : '') +
    (sale.seating === 'reserved' ? ', reserved seating' : '') +
    ' · ' + fmtNumber((sale.availability && sale.availability.total) || 0) + ' units · ' +
    (sale.currency ? 'prices in ' + sale.currency : 'no prices') + ' · starts ' + fmtDate(sale.starts_at)));
  text($('sale-id'), sale.id);
  $('buyer-link').href = '/s' + path(sale.id);
  $('verify-link').href = '/s' + path(sale.id, 'verify');
  $('lottery-verify-link').href = '/s' + path(sale.id, 'verify');
  document.body.dataset.saleState = sale.state;
  renderStats(sale, detail, hist, now);
  renderCharts(hist, now);
  renderStages(sale);
  renderPrices(sale);
  renderCounts(detail);
  renderLottery(sale);
  $('pause-btn').disabled = sale.state === 'paused' || sale.state === 'closed';
  $('resume-btn').disabled = sale.state !== 'paused';
  $('close-btn').disabled = sale.state === 'closed';
  const noRoom = sale.waiting_room === false;
  $('admit-btn').disabled = noRoom || sale.state === 'closed';
}

/** Puts the sale's admission settings into the form. */
export function fillAdmissionForm(sale) {
  const a = sale.admission || {};
  $('a-aps').value = a.admit_per_second ?? '';
  $('a-max-active').value = a.max_active ?? '';
  $('a-ttl').value = a.admission_ttl_seconds ?? '';
  $('a-abandon').value = a.abandon_after_seconds ?? '';
  $('a-mode').value = a.mode || 'fixed';
  text($('admission-error'), '');
  for (const id of ['a-aps', 'a-max-active', 'a-ttl', 'a-abandon']) $(id).removeAttribute('aria-invalid');
}

// --- controls ---------------------------------------------------------------------

/**
 * Runs one control: confirmation, request, words for the outcome.
 * `ctx.sale()` is the selected sale, `ctx.refresh()` reloads the figures,
 * `ctx.unauthorized()` signs out.
 */
async function run(ctx, button, { confirm, request, done }) {
  const sale = ctx.sale();
  if (!sale) return;
  if (!(await confirmStep(confirm(sale)))) {
    say('Cancelled: nothing was changed.');
    return;
  }
  busy(button, true);
  say('Working…');
  let r;
  try {
    r = await request(sale);
  } catch {
    busy(button, false);
    say('Could not reach the server. Nothing may have changed; check the figures and try again.', 'bad');
    return;
  }
  busy(button, false);
  if (r.status === 401) return ctx.unauthorized(r);
  if (r.ok) say(done(r.data, sale), 'ok');
  else say(errorWords(r), 'bad');
  ctx.refresh();
  return r;
}

/** The API's own code and message, which say exactly what was wrong. */
export function errorWords(r) {
  const e = r && r.data && r.data.error;
  if (e && e.message) return 'Refused (' + r.status + ' ' + e.code + '): ' + e.message + '.';
  return explain(r);
}

function patch(sale, body) {
  return adminApi('PATCH', path('sales', sale.id), { body });
}

export function wireControls(ctx) {
  const name = (s) => '“' + s.name + '”';
  $('pause-btn').addEventListener('click', (e) => run(ctx, e.currentTarget, {
    confirm: (s) => ({ title: 'Pause ' + name(s) + '?', body: 'Admission and holds stop until you resume; visitors keep their places and can still join.', confirmLabel: 'Pause the sale' }),
    request: (s) => patch(s, { action: 'pause' }),
    done: (d) => 'Paused. The sale is now ' + d.state.replace(/_/g, ' ') + '.',
  }));
  $('resume-btn').addEventListener('click', (e) => run(ctx, e.currentTarget, {
    confirm: (s) => ({ title: 'Resume ' + name(s) + '?', body: 'Admission and holds start again at the configured rate.', confirmLabel: 'Resume the sale' }),
    request: (s) => patch(s, { action: 'resume' }),
    done: (d) => 'Resumed. The sale is now ' + d.state.replace(/_/g, ' ') + '.',
  }));
  $('close-btn').addEventListener('click', (e) => run(ctx, e.currentTarget, {
    confirm: (s) => ({ title: 'Close ' + name(s) + ' for good?', body: 'A closed sale cannot be reopened: nobody can join or hold any more, and everyone waiting is told it is closed.', confirmLabel: 'Close the sale', danger: true }),
    request: (s) => patch(s, { action: 'close' }),
    done: () => 'Closed.',
  }));
  $('next-stage-btn').addEventListener('click', (e) => run(ctx, e.currentTarget, {
    confirm: (s) => ({ title: 'Release the next stage of ' + name(s) + '?', body: $('stage-hint').textContent + ' Its units go on sale at once.', confirmLabel: 'Release it' }),
    request: (s) => adminApi('POST', path('sales', s.id, 'stages', 'next')),
    done: (d) => 'Stage ' + d.stage + ' released: ' + fmtNumber(d.units) + ' units; ' + fmtNumber(d.released_units) + ' on sale in all.',
  }));
  $('admit-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const input = $('admit-count');
    const n = Number(input.value);
    if (!Number.isInteger(n) || n < 1) {
      input.setAttribute('aria-invalid', 'true');
      say('Say how many visitors to admit: a whole number from 1.', 'bad');
      input.focus();
      return;
    }
    input.removeAttribute('aria-invalid');
    run(ctx, $('admit-btn'), {
      confirm: (s) => ({ title: 'Admit ' + fmtNumber(n) + ' now?', body: 'The next ' + fmtNumber(n) + ' visitors in line of ' + name(s) + ' are admitted at once, beyond the regular rate and max active.', confirmLabel: 'Admit ' + fmtNumber(n) }),
      request: (s) => adminApi('POST', path('sales', s.id, 'admit'), { body: { count: n } }),
      done: (d) => 'Admitted ' + fmtNumber(d.admitted) + (d.abandoned ? ' (' + fmtNumber(d.abandoned) + ' abandoned places skipped)' : '') + '; ' + fmtNumber(d.active) + ' active now.',
    });
  });
  $('admission-reset').addEventListener('click', () => { const s = ctx.sale(); if (s) fillAdmissionForm(s); });
  $('admission-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const form = e.currentTarget; // null once the handler awaits
    const f = Object.fromEntries(new FormData(form).entries());
    const admission = admissionBody(f);
    const err = $('admission-error');
    text(err, '');
    const r = await run(ctx, $('admission-btn'), {
      confirm: (s) => ({
        title: 'Change admission of ' + name(s) + '?',
        body: 'New settings, in force at once: ' + Object.entries(admission).map(([k, v]) => k.replace(/_/g, ' ') + ' ' + v).join(', ') + '.',
        confirmLabel: 'Apply settings',
      }),
      request: (s) => patch(s, { admission }),
      done: (d) => 'Admission settings applied: ' + fmtRate(d.admission.admit_per_second) + ', max active ' + fmtNumber(d.admission.max_active) + ', ' + d.admission.mode + '.',
    });
    if (r && r.ok) fillAdmissionForm(r.data);
    else if (r && r.status === 422) {
      text(err, errorWords(r));
      const field = /admission\.(\w+)/.exec((r.data && r.data.error && r.data.error.message) || '');
      const input = field && form.querySelector('[name="' + field[1] + '"]');
      if (input) { input.setAttribute('aria-invalid', 'true'); input.focus(); }
    }
  });
  $('draw-btn').addEventListener('click', (e) => run(ctx, e.currentTarget, {
    confirm: (s) => ({
      title: 'Draw the lottery of ' + name(s) + '?',
      body: 'Entries close now and the winners are drawn from the seed committed to before the draw (commitment ' +
        s.seed_commitment + '). The seed is revealed so anyone can check the draw. This cannot be undone.',
      confirmLabel: 'Draw now', danger: true,
    }),
    request: (s) => adminApi('POST', path('sales', s.id, 'lottery', 'draw')),
    done: (d) => {
      text($('lottery-seed'), d.seed);
      return 'Drawn: ' + fmtNumber(d.winners) + ' winner(s) of ' + fmtNumber(d.entries) + ' entries. Seed revealed: ' + d.seed + '.';
    },
  }));
  $('audit-btn').addEventListener('click', (e) => run(ctx, e.currentTarget, {
    confirm: (s) => ({ title: 'Run the audit of ' + name(s) + '?', body: 'Counts every unit, hold and order of the sale in Postgres (I1–I3) and compares the waiting room in Redis. It changes nothing, but on a large sale it is a heavy query.', confirmLabel: 'Run the audit' }),
    request: (s) => adminApi('GET', path('sales', s.id, 'audit')),
    done: (report) => {
      renderAudit(report);
      return auditVerdict(report).title;
    },
  }));
}

function renderAudit(report) {
  const v = auditVerdict(report);
  const box = $('audit-result');
  clear(box);
  box.className = 'audit ' + (v.ok ? 'ok' : 'bad');
  box.dataset.ok = String(v.ok);
  box.appendChild(node('p', 'verdict ' + (v.ok ? 'ok' : 'bad'), v.title));
  const u = report.units || {};
  box.appendChild(node('p', 'small', 'Units: ' + fmtNumber(u.total) + ' = ' + fmtNumber(u.available) + ' available + ' +
    fmtNumber(u.held) + ' held + ' + fmtNumber(u.sold) + ' sold + ' + fmtNumber(u.unreleased) + ' unreleased. Checked ' + fmtDate(report.checked_at) + '.'));
  if (v.failed.length) {
    const ul = node('ul', 'small');
    for (const f of v.failed) ul.appendChild(node('li', null, f));
    box.appendChild(ul);
  }
  show(box, true);
}

/** Clears what belonged to the previously selected sale. */
export function resetSalePanel() {
  show($('audit-result'), false);
  say('');
}
