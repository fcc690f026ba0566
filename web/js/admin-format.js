// Pure formatting and parsing for the admin console: the figures of a sale,
// the create-sale form as the API's body, the audit's verdict. No DOM, no
// network: everything here runs under `node --test` (admin-format.test.mjs).

import { currencyDigits, fmtMoney, fmtNumber, fmtWait, saleCategories, toMinorUnits } from './format.js';
import { addDays, isDate, weekday } from './calendar.js';

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
  const sessions = sessionsBody(f.sessions);
  if (sessions.error) return { error: sessions.error, field: sessions.field, rows: prices.rows || [] };
  if (sessions.sessions) {
    if (body.units.sections) return { error: 'Sessions are general admission: choose a unit count (each session’s capacity), not sections.', field: 'seating', rows: prices.rows || [] };
    body.sessions = sessions.sessions;
  }
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

// --- sessions (SPEC §3): a simple recurrence from the create form -----------------------

const WEEKDAY_NAMES = ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'];

/**
 * The sessions part of the create form as the API's `sessions`: `s =
 * {time_zone, from, to, start, end, every, length, except, weekdays: [1..7],
 * scope: 'sale'|'session', no_overlap}` (strings as typed; `from`/`to`
 * YYYY-MM-DD, `start`/`end` HH:MM). Answers `{}` when no recurrence is
 * filled in (a time zone alone is not one), `{sessions}`, or `{error,
 * field}` with `field` named as the API would.
 */
export function sessionsBody(s) {
  if (!s) return {};
  const blank = (v) => v == null || String(v).trim() === '';
  if (['from', 'to', 'start', 'end', 'every', 'length', 'except'].every((k) => blank(s[k]))) return {};
  const f = (k) => 'sessions.recurrence.' + k;
  const timeZone = String(s.time_zone || '').trim();
  if (!timeZone) return { error: 'Give the time zone of the sessions, an IANA name like Europe/Amsterdam.', field: 'sessions.time_zone' };
  const from = String(s.from || '').trim();
  const to = String(s.to || '').trim();
  if (!isDate(from)) return { error: 'The first day of the sessions is a date (YYYY-MM-DD).', field: f('from') };
  if (!isDate(to)) return { error: 'The last day of the sessions is a date (YYYY-MM-DD).', field: f('to') };
  if (to < from) return { error: 'The last day of the sessions comes on or after the first.', field: f('to') };
  const time = (v) => /^\d{2}:\d{2}$/.test(String(v || '').trim());
  if (!time(s.start)) return { error: 'Give the daily start of the sessions as a time (HH:MM).', field: f('start') };
  if (!time(s.end)) return { error: 'Give the time by which the day’s last session ends (HH:MM).', field: f('end') };
  const every = intOrUndefined(s.every);
  if (!Number.isInteger(every)) return { error: 'Say every how many minutes a session starts (a whole number, 5 to 1440).', field: f('every_minutes') };
  const recurrence = { from, to, start: String(s.start).trim(), end: String(s.end).trim(), every_minutes: every };
  const length = intOrUndefined(s.length);
  if (length !== undefined) {
    if (!Number.isInteger(length)) return { error: 'The length of a session is a whole number of minutes.', field: f('duration_minutes') };
    recurrence.duration_minutes = length;
  }
  const days = Array.isArray(s.weekdays) ? s.weekdays.map(Number).filter((d) => d >= 1 && d <= 7) : [1, 2, 3, 4, 5, 6, 7];
  if (!days.length) return { error: 'Choose at least one weekday for the sessions.', field: f('weekdays') };
  if (days.length < 7) recurrence.weekdays = Array.from(new Set(days)).sort((a, b) => a - b);
  if (!blank(s.except)) {
    const except = String(s.except).split(/[\s,;]+/).filter(Boolean);
    const bad = except.find((d) => !isDate(d));
    if (bad) return { error: 'Days without sessions are dates (YYYY-MM-DD); check “' + bad + '”.', field: f('except') };
    recurrence.except = except;
  }
  const sessions = { time_zone: timeZone, recurrence };
  if (s.scope === 'session') sessions.per_user_limit = 'session';
  if (s.no_overlap) sessions.no_overlap = true;
  return { sessions };
}

/**
 * How many sessions a recurrence makes (a local hour skipped when clocks go
 * forward may make a few less): days that count × starts per day.
 */
export function recurrenceCount(r) {
  if (!r || !isDate(r.from) || !isDate(r.to) || r.to < r.from) return 0;
  const mins = (t) => { const [h, m] = String(t).split(':').map(Number); return h * 60 + m; };
  const every = Number(r.every_minutes);
  const length = Number(r.duration_minutes || r.every_minutes);
  const span = mins(r.end) - mins(r.start);
  if (!(every > 0) || !(length > 0) || span < length) return 0;
  const perDay = Math.floor((span - length) / every) + 1;
  const except = new Set(r.except || []);
  let days = 0;
  for (let d = r.from; d <= r.to; d = addDays(d, 1)) {
    if (except.has(d) || (r.weekdays && !r.weekdays.includes(weekday(d)))) continue;
    days++;
    if (days > 4000) break;
  }
  return days * perDay;
}

/** "about 480 sessions: every 30 min from 10:00 to 18:00, 2027-01-15 to 2027-04-14, Mon, Wed (except 2027-02-01), Europe/Amsterdam", for the confirmation. */
export function sessionsSummary(sessions, locale) {
  if (!sessions || !sessions.recurrence) return '';
  const r = sessions.recurrence;
  const n = recurrenceCount(r);
  const length = r.duration_minutes && r.duration_minutes !== r.every_minutes ? ' (' + r.duration_minutes + ' min each)' : '';
  const days = r.weekdays ? ', ' + r.weekdays.map((d) => WEEKDAY_NAMES[d - 1]).join(', ') : ', every day';
  const except = r.except && r.except.length ? ' except ' + r.except.join(', ') : '';
  return 'about ' + fmtNumber(n, locale) + (n === 1 ? ' session' : ' sessions') + ': every ' + r.every_minutes + ' min from ' + r.start + ' to ' + r.end +
    length + ', ' + r.from + ' to ' + r.to + days + except + ', in ' + sessions.time_zone +
    (sessions.per_user_limit === 'session' ? '; the per-person limit counts in each session' : '') +
    (sessions.no_overlap ? '; no overlapping sessions for one buyer' : '');
}
