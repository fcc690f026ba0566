// Pure formatting and parsing for the admin console: the figures of a sale,
// the create-sale form as the API's body, the audit's verdict. No DOM, no
// network: everything here runs under `node --test` (admin-format.test.mjs).

import { fmtNumber, fmtWait } from './format.js';

/** A number, or '–' when unknown. */
export function num(n, locale) {
  return n == null || Number.isNaN(Number(n)) ? '–' : fmtNumber(n, locale);
}

/** A rate with one decimal below 10: "3.5/s", "120/s"; '–' when unknown. */
export function fmtRate(perSecond, unit = '/s') {
  if (perSecond == null || !Number.isFinite(Number(perSecond))) return '–';
  const v = Number(perSecond);
  return (Math.abs(v) < 10 ? (Math.round(v * 10) / 10).toString() : Math.round(v).toString()) + unit;
}

/** The sum of a `{state: count}` object. */
export function total(counts) {
  if (!counts || typeof counts !== 'object') return 0;
  return Object.values(counts).reduce((a, b) => a + (Number(b) || 0), 0);
}

/** "held 2 · confirmed 5" from a `{state: count}` object; 'none' when empty. */
export function countsText(counts) {
  const parts = Object.entries(counts || {}).filter(([, n]) => n > 0).map(([k, n]) => k.replace(/_/g, ' ') + ' ' + n);
  return parts.length ? parts.join(' · ') : 'none';
}

/**
 * Per-minute figures of a sale: from the server's `activity` (counted over
 * its window) when present; else from the change of the cumulative counts
 * this page has seen over the last minute (`history`: [{t, holds, orders,
 * expired}] oldest first), which is null until the page has watched long
 * enough.
 */
export function perMinute(detail, history, nowMs) {
  const a = detail && detail.activity;
  if (a && a.window_seconds > 0) {
    const k = 60 / a.window_seconds;
    return {
      holds: a.holds_created * k,
      orders: a.orders_confirmed * k,
      expired: a.holds_expired * k,
      refunds: a.refunds_required,
      dead: a.dead_letters,
      from: 'server',
    };
  }
  const out = { holds: null, orders: null, expired: null, refunds: null, dead: null, from: 'page' };
  if (!history || history.length < 2) return out;
  const last = history[history.length - 1];
  const since = (nowMs == null ? last.t : nowMs) - 60_000;
  const first = history.find((h) => h.t >= since) || history[0];
  const span = (last.t - first.t) / 1000;
  if (span < 5) return out;
  const k = 60 / span;
  out.holds = (last.holds - first.holds) * k;
  out.orders = (last.orders - first.orders) * k;
  out.expired = (last.expired - first.expired) * k;
  return out;
}

/** The figures shown for a sale, as [label, value, hint?] rows. */
export function saleFigures(sale, detail, history, nowMs, locale) {
  const q = sale.queue || {};
  const adm = sale.admission || {};
  const pm = perMinute(detail, history, nowMs);
  const rows = [];
  rows.push(['State', sale.state.replace(/_/g, ' ')]);
  if (sale.waiting_room !== false) {
    rows.push(['Queue length', num(q.length, locale)]);
    rows.push(['Active / max', num(q.active, locale) + ' / ' + num(adm.max_active, locale)]);
    rows.push(['Admitted so far', num(q.admitted, locale)]);
    rows.push(['Admission rate', q.admission_rate == null ? 'not measured yet' : fmtRate(q.admission_rate) + ' measured',
      'configured ' + fmtRate(adm.admit_per_second) + (adm.mode === 'adaptive'
        ? ', adaptive now ' + fmtRate(adm.effective_admit_per_second ?? q.effective_admit_per_second) : '')]);
    rows.push(['Wait at the back', q.estimated_wait_seconds == null ? '–' : fmtWait(q.estimated_wait_seconds)]);
  }
  const av = sale.availability || {};
  rows.push(['Available', num(av.available, locale) + ' of ' + num(av.total, locale)]);
  rows.push(['Held / sold', num(av.held, locale) + ' / ' + num(av.sold, locale)]);
  rows.push(['Holds per minute', pm.holds == null ? '–' : fmtRate(pm.holds, '')]);
  rows.push(['Orders per minute', pm.orders == null ? '–' : fmtRate(pm.orders, '')]);
  rows.push(['Expiries per minute', pm.expired == null ? '–' : fmtRate(pm.expired, '')]);
  rows.push(['Refunds required', pm.refunds == null ? '–' : num(pm.refunds, locale)]);
  rows.push(['Dead letters', pm.dead == null ? '–' : num(pm.dead, locale)]);
  return rows;
}

/** "30, 40, 30" as [30, 40, 30]; null when not a list of whole numbers. */
export function parseStages(input) {
  const parts = String(input || '').split(/[\s,;]+/).filter(Boolean);
  if (!parts.length) return null;
  const nums = parts.map(Number);
  return nums.every((n) => Number.isInteger(n)) ? nums : null;
}

function intOrUndefined(v) {
  if (v == null || String(v).trim() === '') return undefined;
  const n = Number(v);
  return Number.isFinite(n) ? n : String(v);
}

/**
 * The create-sale form's values (strings, and a boolean for the checkbox)
 * as the body of POST /admin/v1/sales: `{body}` or `{error, field}` for what
 * the form itself can tell (the rest is the API's to judge: its 422
 * message is shown as it is). `starts_at` is read as UTC.
 */
export function saleBody(f) {
  const body = { name: String(f.name || '').trim(), mode: f.mode || 'fifo' };
  if (!body.name) return { error: 'Give the sale a name.', field: 'name' };
  const units = intOrUndefined(f.units);
  if (units === undefined) return { error: 'Say how many units the sale has.', field: 'units' };
  body.units = { count: units };
  const stages = parseStages(f.stages);
  if (f.stages && String(f.stages).trim() && !stages) return { error: 'Stages are whole percentages, like 30, 40, 30.', field: 'stages' };
  if (stages) body.stages = stages;
  if (f.starts_at) {
    const iso = /Z$|[+-]\d\d:\d\d$/.test(f.starts_at) ? f.starts_at : f.starts_at + (f.starts_at.length === 16 ? ':00Z' : 'Z');
    if (Number.isNaN(Date.parse(iso))) return { error: 'The start time is not a date and time.', field: 'starts_at' };
    body.starts_at = new Date(iso).toISOString();
  }
  for (const k of ['per_user_limit', 'hold_ttl_seconds']) {
    const v = intOrUndefined(f[k]);
    if (v !== undefined) body[k] = v;
  }
  body.shuffle_prequeue = !!f.shuffle_prequeue;
  const admission = admissionBody(f);
  if (Object.keys(admission).length) body.admission = admission;
  const bits = intOrUndefined(f.difficulty_bits);
  if (bits !== undefined) body.challenge = { difficulty_bits: bits };
  return { body };
}

/** The admission fields of a form as the API's `admission` object (only those filled in). */
export function admissionBody(f) {
  const out = {};
  for (const k of ['admit_per_second', 'max_active', 'admission_ttl_seconds', 'abandon_after_seconds']) {
    const v = intOrUndefined(f[k]);
    if (v !== undefined) out[k] = v;
  }
  if (f.mode === 'fixed' || f.mode === 'adaptive') out.mode = f.mode;
  return out;
}

/** The audit's verdict: `{ok, title, failed: [lines]}`. */
export function auditVerdict(report) {
  if (!report) return { ok: false, title: 'No answer', failed: [] };
  const failed = [];
  for (const c of report.checks || []) {
    if (!c.ok) failed.push(`${c.invariant ? c.invariant + ' ' : ''}${c.name}: ${c.violations} violation(s)` + (c.examples && c.examples.length ? ' (e.g. ' + c.examples.slice(0, 3).join('; ') + ')' : ''));
  }
  const wr = report.waiting_room;
  for (const c of (wr && wr.checks) || []) {
    if (!c.ok) failed.push(`waiting room ${c.name}: ${c.violations} difference(s)` + (c.examples && c.examples.length ? ' (e.g. ' + c.examples.slice(0, 3).join('; ') + ')' : ''));
  }
  const ok = !!report.ok && (!wr || wr.ok !== false);
  const n = (report.checks || []).length + ((wr && wr.checks) || []).length;
  return {
    ok,
    title: ok ? `Audit OK: all ${n} checks passed.` : `Audit FAILED: ${failed.length} of ${n} checks failed.`,
    failed,
  };
}
