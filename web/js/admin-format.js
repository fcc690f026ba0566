// Pure formatting and parsing for the admin console: the figures of a sale,
// the create-sale form as the API's body, the audit's verdict. No DOM, no
// network: everything here runs under `node --test` (admin-format.test.mjs).

import { currencyDigits, fmtMoney, fmtNumber, fmtWait, saleCategories, toMinorUnits } from './format.js';

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
  const value = soldValue(sale);
  if (value) rows.push(['Sold for', fmtMoney(value, locale), 'units sold × their category’s price']);
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
  if (f.seating === 'reserved') {
    const parsed = parseSections(f.sections);
    if (parsed.error) return { error: parsed.error, field: 'sections' };
    body.units = { sections: parsed.sections };
  } else {
    const units = intOrUndefined(f.units);
    if (units === undefined) return { error: 'Say how many units the sale has.', field: 'units' };
    body.units = { count: units };
  }
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
  const prices = pricesBody(f.prices);
  if (prices.error) return { error: prices.error, field: prices.field, rows: prices.rows };
  if (prices.prices) body.prices = prices.prices;
  return { body, rows: prices.rows || [] };
}

/**
 * Reserved seating typed as "A:10x20, B:5x12" (name:rows×seats per row) as
 * the API's `units.sections`: `{sections}` or `{error}`.
 */
export function parseSections(input) {
  const parts = String(input || '').split(/[,;\n]+/).map((p) => p.trim()).filter(Boolean);
  if (!parts.length) return { error: 'List the sections as name:rows×seats, like A:10x20, B:5x12.' };
  const sections = [];
  for (const part of parts) {
    const m = /^(.+?)\s*:\s*(\d+)\s*[x×*]\s*(\d+)$/i.exec(part);
    if (!m) return { error: 'A section is name:rows×seats per row, like A:10x20; check “' + part + '”.' };
    sections.push({ name: m[1].trim(), rows: Number(m[2]), seats_per_row: Number(m[3]) });
  }
  return { sections };
}

/** What a price category of the form covers, as the API names it. */
const COVERS = { stages: 'stages', sections: 'sections', units: 'units' };

/** "1-100, 201-300" (or "7") as `[{from, to}]`; null when not that. */
export function parseUnitRanges(input) {
  const parts = String(input || '').split(/[\s,;]+/).filter(Boolean);
  if (!parts.length) return null;
  const out = [];
  for (const p of parts) {
    const m = /^(\d+)(?:[-–‐]|\.\.)?(\d+)?$/.exec(p);
    if (!m) return null;
    out.push({ from: Number(m[1]), to: Number(m[2] || m[1]) });
  }
  return out;
}

/**
 * The prices part of the create form as the API's `prices`:
 * `p = {currency, categories: [{name, amount, covers, list}]}` with the
 * amount in major units as typed ("45.00") and `covers` one of 'all',
 * 'stages', 'sections', 'units' (`list`: "2, 3", "A, B" or "1-100").
 * Blank category rows are left out. Answers `{}` when there are no prices,
 * `{prices, rows}` (rows: the form's row of each category sent, so the
 * API's "prices.categories[1]" can be found in the form), or
 * `{error, field, rows}` with `field` named as the API would.
 */
export function pricesBody(p) {
  const all = (p && Array.isArray(p.categories) ? p.categories : []);
  const blank = (v) => v == null || String(v).trim() === '';
  const used = [];
  all.forEach((c, row) => { if (!(blank(c.name) && blank(c.amount) && blank(c.list))) used.push({ ...c, row }); });
  const rows = used.map((c) => c.row);
  const currency = String((p && p.currency) || '').trim().toUpperCase();
  if (!used.length && !currency) return {};
  if (!currency) return { error: 'Give the currency of the prices (three letters, like EUR), or leave the prices empty.', field: 'prices.currency', rows };
  if (currencyDigits(currency) == null) return { error: 'The currency is an ISO 4217 code of three letters, like EUR or JPY.', field: 'prices.currency', rows };
  if (!used.length) return { error: 'Add a price category, or clear the currency for a sale without prices.', field: 'prices.categories[0].name', rows: [0] };
  const categories = [];
  for (let i = 0; i < used.length; i++) {
    const c = used[i];
    const field = 'prices.categories[' + i + ']';
    const label = 'Price category ' + (c.row + 1);
    const name = String(c.name || '').trim();
    if (!name) return { error: label + ' needs a name.', field: field + '.name', rows };
    const amount = toMinorUnits(c.amount, currency);
    if (amount.error) return { error: label + ' (' + name + '): ' + amount.error, field: field + '.amount', rows };
    const out = { name, amount: amount.amount };
    const key = COVERS[c.covers];
    if (key === 'stages') {
      const stages = parseStages(c.list);
      if (!stages) return { error: label + ' (' + name + '): list its stages as numbers, like 2, 3.', field: field + '.stages', rows };
      out.stages = stages;
    } else if (key === 'sections') {
      const sections = String(c.list || '').split(/[,;]+/).map((x) => x.trim()).filter(Boolean);
      if (!sections.length) return { error: label + ' (' + name + '): list its sections by name, like A, B.', field: field + '.sections', rows };
      out.sections = sections;
    } else if (key === 'units') {
      const units = parseUnitRanges(c.list);
      if (!units) return { error: label + ' (' + name + '): list its unit ranges, like 1-100, 201-300.', field: field + '.units', rows };
      out.units = units;
    }
    categories.push(out);
  }
  return { prices: { currency, categories }, rows };
}

/** "Early bird ¥6,800 (stage 1), Regular ¥8,800 (stages 2, 3)": the prices of a create body, for its confirmation. */
export function pricesSummary(prices, locale) {
  if (!prices) return '';
  const what = (c) => {
    if (c.stages) return (c.stages.length === 1 ? 'stage ' : 'stages ') + c.stages.join(', ');
    if (c.sections) return (c.sections.length === 1 ? 'section ' : 'sections ') + c.sections.join(', ');
    if (c.units) return 'units ' + c.units.map((r) => (r.from === r.to ? r.from : r.from + '–' + r.to)).join(', ');
    return 'all units';
  };
  return prices.categories.map((c) => c.name + ' ' + fmtMoney({ amount: c.amount, currency: prices.currency }, locale) + ' (' + what(c) + ')').join(', ');
}

/** The worth of the units sold, by their categories' prices: `{amount, currency}`, or null without prices. */
export function soldValue(sale) {
  const cats = saleCategories(sale);
  if (!cats.length) return null;
  return { amount: cats.reduce((a, c) => a + (Number(c.sold) || 0) * (Number(c.amount) || 0), 0), currency: sale.currency };
}

/** One row of the console's price table: [name, price, units, available, held, sold, unreleased]. */
export function categoryRow(cat, currency, locale) {
  return [cat.name, fmtMoney({ amount: cat.amount, currency }, locale), num(cat.units, locale), num(cat.available, locale),
    num(cat.held, locale), num(cat.sold, locale), num(cat.unreleased, locale)];
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
