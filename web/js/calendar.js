// Pure calendar maths for a sale's sessions (SPEC §3 "Sessions": timed
// entry, event series): month grids, month ranges to ask the API for, a
// session's local date and times, sessions grouped by local date, what a
// day and a slot have to offer, and the words for them. No DOM, no network,
// no clock: everything here runs under `node --test` (calendar.test.mjs).
//
// Dates are 'YYYY-MM-DD' strings of the sale's time zone. A session's local
// date and time come from the offset in its `starts_at_local` (RFC 3339 in
// the sale's zone, e.g. "2027-03-28T10:00:00+02:00"), never from the
// browser's zone: a buyer in Tokyo sees Amsterdam's 10:00 as 10:00 on the
// 28th, across a change to summer time too. Names of months and weekdays
// are formatted from a UTC date with timeZone 'UTC', for the same reason.

import { fmtNumber, plural } from './format.js';

const DAY_MS = 86_400_000;
/** The widest offsets of any time zone: UTC+14 and UTC−12. */
const EAST_MS = 14 * 3_600_000;
const WEST_MS = 12 * 3_600_000;

const LOCAL_RE = /^(\d{4}-\d{2}-\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?(Z|[+-]\d{2}:?\d{2})$/i;

/** "2027-03-28T10:00:00+02:00" as `{date: '2027-03-28', time: '10:00', offset: '+02:00'}`; null when not RFC 3339. */
export function parseLocal(iso) {
  const m = LOCAL_RE.exec(String(iso == null ? '' : iso).trim());
  if (!m) return null;
  const offset = m[5].toUpperCase() === 'Z' ? 'Z' : m[5].replace(/^([+-]\d{2})(\d{2})$/, '$1:$2');
  return { date: m[1], time: m[2] + ':' + m[3], offset };
}

/** Where a session starts, locally: from `starts_at_local`, else (no time zone) the UTC `starts_at`. */
function localStart(s) {
  return (s && (parseLocal(s.starts_at_local) || parseLocal(s.starts_at))) || null;
}

function localEnd(s) {
  return (s && (parseLocal(s.ends_at_local) || parseLocal(s.ends_at))) || null;
}

/** A session's local date ('YYYY-MM-DD'), or '' when it has no readable start. */
export function sessionDate(s) {
  const p = localStart(s);
  return p ? p.date : '';
}

/** A session's local start and end: `{start: '10:00', end: '10:30', days}` (days: how many dates later it ends). */
export function sessionTimes(s) {
  const a = localStart(s);
  const b = localEnd(s);
  if (!a) return { start: '', end: '', days: 0 };
  if (!b) return { start: a.time, end: '', days: 0 };
  return { start: a.time, end: b.time, days: Math.round((dateMs(b.date) - dateMs(a.date)) / DAY_MS) };
}

/** "10:00–10:30", "23:30–00:30 (next day)". */
export function slotText(s) {
  const t = sessionTimes(s);
  if (!t.start) return '';
  if (!t.end) return t.start;
  const later = t.days === 1 ? ' (next day)' : t.days > 1 ? ' (+' + t.days + ' days)' : '';
  return t.start + '–' + t.end + later;
}

// ---------------------------------------------------------------------------
// Dates and months (no time zone involved: plain calendar arithmetic)
// ---------------------------------------------------------------------------

function pad(n, width = 2) {
  return String(n).padStart(width, '0');
}

/** 'YYYY-MM-DD' of a year, month (1–12) and day. */
export function isoDate(year, month, day) {
  return pad(year, 4) + '-' + pad(month) + '-' + pad(day);
}

/** Midnight UTC of a date, in ms (its calendar position, not an instant of the sale). */
function dateMs(date) {
  const [y, m, d] = String(date).split('-').map(Number);
  return Date.UTC(y, m - 1, d);
}

function fromMs(ms) {
  const d = new Date(ms);
  return isoDate(d.getUTCFullYear(), d.getUTCMonth() + 1, d.getUTCDate());
}

/** Whether a string is a real date 'YYYY-MM-DD'. */
export function isDate(s) {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(String(s))) return false;
  return fromMs(dateMs(s)) === s;
}

/** The date `n` days after (before, when negative) `date`. */
export function addDays(date, n) {
  return fromMs(dateMs(date) + n * DAY_MS);
}

/** 1 (Monday) to 7 (Sunday), as ISO 8601 and the API's recurrence weekdays count. */
export function weekday(date) {
  return new Date(dateMs(date)).getUTCDay() || 7;
}

/** Days in a month (1–12) of a year. */
export function daysInMonth(year, month) {
  return new Date(Date.UTC(year, month, 0)).getUTCDate();
}

/** `{year, month}` of a date. */
export function monthOf(date) {
  const [y, m] = String(date).split('-').map(Number);
  return { year: y, month: m };
}

/** The month `n` months after `ym`. */
export function addMonths(ym, n) {
  const i = ym.year * 12 + (ym.month - 1) + n;
  return { year: Math.floor(i / 12), month: (i % 12 + 12) % 12 + 1 };
}

/** Negative, 0 or positive as month `a` is before, equal to or after `b`. */
export function compareMonths(a, b) {
  return (a.year * 12 + a.month) - (b.year * 12 + b.month);
}

/** 'YYYY-MM'. */
export function monthKey(ym) {
  return pad(ym.year, 4) + '-' + pad(ym.month);
}

/** Whether `date` falls in month `ym`. */
export function inMonth(date, ym) {
  return String(date).slice(0, 7) === monthKey(ym);
}

/**
 * The weeks of a month as rows of 7 cells, the week starting on
 * `weekStart` (1 = Monday … 7 = Sunday): each cell `{date, day}` or null
 * before the 1st and after the last day.
 */
export function monthGrid(year, month, weekStart = 1) {
  const first = isoDate(year, month, 1);
  const lead = (weekday(first) - weekStart + 7) % 7;
  const days = daysInMonth(year, month);
  const cells = [];
  for (let i = 0; i < lead; i++) cells.push(null);
  for (let d = 1; d <= days; d++) cells.push({ date: isoDate(year, month, d), day: d });
  while (cells.length % 7) cells.push(null);
  const weeks = [];
  for (let i = 0; i < cells.length; i += 7) weeks.push(cells.slice(i, i + 7));
  return weeks;
}

/**
 * The UTC range to ask the calendar for so that every session whose local
 * date is in the month is in it, whatever the sale's offset (UTC−12 to
 * UTC+14): `{from, to}` as RFC 3339. It holds some sessions of the days
 * around the month too; `sessionDate` sorts them out.
 */
export function monthRange(ym) {
  const start = Date.UTC(ym.year, ym.month - 1, 1);
  const end = Date.UTC(ym.year, ym.month, 1);
  return { from: new Date(start - EAST_MS).toISOString(), to: new Date(end + WEST_MS).toISOString() };
}

/** The date a key moves the calendar's focus to from `date` (null: not a key the grid uses). */
export function moveDate(date, key, weekStart = 1) {
  switch (key) {
    case 'ArrowLeft': return addDays(date, -1);
    case 'ArrowRight': return addDays(date, 1);
    case 'ArrowUp': return addDays(date, -7);
    case 'ArrowDown': return addDays(date, 7);
    case 'Home': return addDays(date, -((weekday(date) - weekStart + 7) % 7));
    case 'End': return addDays(date, 6 - ((weekday(date) - weekStart + 7) % 7));
    case 'PageUp':
    case 'PageDown': {
      const ym = addMonths(monthOf(date), key === 'PageUp' ? -1 : 1);
      const day = Math.min(Number(String(date).slice(8, 10)), daysInMonth(ym.year, ym.month));
      return isoDate(ym.year, ym.month, day);
    }
    default: return null;
  }
}

/**
 * The offset of `timeZone` at the instant `ms`, in minutes east of UTC
 * (from Intl; 0 when the zone is unknown).
 */
export function zoneOffsetMinutes(timeZone, ms) {
  try {
    const parts = new Intl.DateTimeFormat('en-US', {
      timeZone, hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit',
    }).formatToParts(new Date(ms));
    const get = (type) => Number((parts.find((p) => p.type === type) || {}).value);
    const asUtc = Date.UTC(get('year'), get('month') - 1, get('day'), get('hour'), get('minute'), get('second'));
    const off = Math.round((asUtc - Math.floor(ms / 1000) * 1000) / 60000);
    return Number.isFinite(off) ? off : 0;
  } catch {
    return 0;
  }
}

/** The instant a local date begins in `timeZone` (its midnight, or the first moment after a skipped one), as RFC 3339 UTC. */
export function localMidnight(date, timeZone) {
  const base = dateMs(date);
  let at = base - zoneOffsetMinutes(timeZone, base) * 60000;
  at = base - zoneOffsetMinutes(timeZone, at) * 60000;
  return new Date(at).toISOString();
}

// ---------------------------------------------------------------------------
// Sessions by day
// ---------------------------------------------------------------------------

/** Sessions by local date: a Map of 'YYYY-MM-DD' to its sessions in time order (only those of month `ym` when given). */
export function groupByDate(sessions, ym) {
  const byDate = new Map();
  for (const s of sessions || []) {
    const date = sessionDate(s);
    if (!date || (ym && !inMonth(date, ym))) continue;
    if (!byDate.has(date)) byDate.set(date, []);
    byDate.get(date).push(s);
  }
  for (const list of byDate.values()) {
    list.sort((a, b) => Date.parse(a.starts_at) - Date.parse(b.starts_at) || Number(a.id) - Number(b.id));
  }
  return byDate;
}

/**
 * What a slot offers now: 'available' (on sale with tickets left), 'later'
 * (its tickets are not released yet), 'none_now' (all held right now),
 * 'sold_out', or the session's own state when not on sale ('paused',
 * 'closed', 'cancelled').
 */
export function slotStatus(s) {
  if (!s) return 'closed';
  if (s.state && s.state !== 'on_sale') return s.state;
  if (Number(s.available) > 0) return 'available';
  if (Number(s.unreleased) > 0) return 'later';
  if (Number(s.held) > 0) return 'none_now';
  return 'sold_out';
}

/** Whether a buyer can hold in this slot now. */
export function choosable(s) {
  return slotStatus(s) === 'available';
}

/** A slot's state in words: "5 left", "sold out", "paused", … */
export function slotStatusText(s, locale) {
  switch (slotStatus(s)) {
    case 'available': return fmtNumber(s.available, locale) + ' left';
    case 'later': return 'on sale later';
    case 'none_now': return 'none left right now';
    case 'sold_out': return 'sold out';
    case 'paused': return 'paused';
    case 'closed': return 'closed';
    case 'cancelled': return 'cancelled';
    default: return String(s.state || '');
  }
}

/** A day's slots in figures: `{slots, open, left}` (open: slots one can hold in; left: their tickets). */
export function daySummary(list) {
  const out = { slots: 0, open: 0, left: 0 };
  for (const s of list || []) {
    out.slots++;
    if (choosable(s)) {
      out.open++;
      out.left += Number(s.available) || 0;
    }
  }
  return out;
}

/** A day in words for its button: "3 times, 15 left", "4 times, none free", "no times". */
export function dayHint(summary, locale) {
  if (!summary || !summary.slots) return 'no times';
  const times = plural(summary.slots, 'time', 'times');
  if (!summary.open) return times + ', none free';
  const open = summary.open === summary.slots ? '' : ' (' + fmtNumber(summary.open, locale) + ' free)';
  return times + open + ', ' + fmtNumber(summary.left, locale) + ' left';
}

/** The short mark under a day's number: tickets left, "full", or '' for a day without times. */
export function dayMark(summary, locale) {
  if (!summary || !summary.slots) return '';
  return summary.open ? fmtNumber(summary.left, locale) : 'full';
}

/** How full a day is, for its colour: 'none' (no times), 'full', 'few' (under a fifth left of a day's capacity), 'open'. */
export function dayLevel(list) {
  const sum = daySummary(list);
  if (!sum.slots) return 'none';
  if (!sum.open) return 'full';
  const capacity = (list || []).reduce((a, s) => a + (Number(s.capacity) || 0), 0);
  return capacity > 0 && sum.left * 5 < capacity ? 'few' : 'open';
}

/** The first date of month `ym` with a slot one can hold in, or null. */
export function firstOpenDate(byDate, ym) {
  const dates = Array.from(byDate.keys()).filter((d) => !ym || inMonth(d, ym)).sort();
  return dates.find((d) => daySummary(byDate.get(d)).open > 0) || null;
}

// ---------------------------------------------------------------------------
// Names (from a UTC date formatted in UTC: the browser's zone plays no part)
// ---------------------------------------------------------------------------

function fmtUtc(ms, opts, locale) {
  try {
    return new Date(ms).toLocaleDateString(locale, { ...opts, timeZone: 'UTC' });
  } catch {
    return new Date(ms).toISOString().slice(0, 10);
  }
}

/** "March 2027". */
export function monthLabel(ym, locale) {
  return fmtUtc(Date.UTC(ym.year, ym.month - 1, 1), { month: 'long', year: 'numeric' }, locale);
}

/** "Sunday, March 28, 2027". */
export function dayLabel(date, locale) {
  return fmtUtc(dateMs(date), { weekday: 'long', day: 'numeric', month: 'long', year: 'numeric' }, locale);
}

/** "Sun, Mar 28, 2027". */
export function shortDayLabel(date, locale) {
  return fmtUtc(dateMs(date), { weekday: 'short', day: 'numeric', month: 'short', year: 'numeric' }, locale);
}

/** The grid's column heads from `weekStart` on: [{short: 'Mo', long: 'Monday'}, …]. */
export function weekdayNames(weekStart = 1, locale) {
  const out = [];
  // 2024-01-01 was a Monday.
  for (let i = 0; i < 7; i++) {
    const ms = Date.UTC(2024, 0, 1 + ((weekStart - 1 + i) % 7));
    out.push({ short: fmtUtc(ms, { weekday: 'short' }, locale), long: fmtUtc(ms, { weekday: 'long' }, locale) });
  }
  return out;
}

/** When a session is, in words: "Sun, Mar 28, 2027, 10:00–10:30"; '' when unreadable. */
export function sessionWhen(s, locale) {
  const date = sessionDate(s);
  if (!date) return '';
  return shortDayLabel(date, locale) + ', ' + slotText(s);
}

/** "Times are in Europe/Amsterdam time." (or UTC without a zone). */
export function timeZoneNote(timeZone) {
  return 'Times are in ' + (timeZone ? timeZone.replace(/_/g, ' ') : 'UTC') + ' time.';
}
