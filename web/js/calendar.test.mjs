// node --test: the calendar maths of calendar.js (SPEC §3 "Sessions").

import { test } from 'node:test';
import assert from 'node:assert/strict';

// Whatever zone this machine is in, the answers below must not change: run
// as if in Honolulu (UTC−10), far from the sale's Amsterdam.
process.env.TZ = 'Pacific/Honolulu';

const {
  addDays, addMonths, choosable, compareMonths, dayHint, dayLabel, dayLevel, dayMark, daySummary, daysInMonth,
  firstOpenDate, groupByDate, localMidnight, zoneOffsetMinutes, inMonth, isDate, monthGrid, monthKey, monthLabel, monthOf, monthRange, moveDate,
  parseLocal, sessionDate, sessionTimes, sessionWhen, shortDayLabel, slotStatus, slotStatusText, slotText,
  timeZoneNote, weekday, weekdayNames,
} = await import('./calendar.js');

/** A session as GET /api/v1/sales/{sale}/sessions gives it. */
function session(id, startsUtc, startsLocal, endsUtc, endsLocal, extra = {}) {
  return {
    id: String(id), starts_at: startsUtc, ends_at: endsUtc, starts_at_local: startsLocal, ends_at_local: endsLocal,
    state: 'on_sale', capacity: 5, available: 5, held: 0, sold: 0, unreleased: 0, withdrawn: 0, ...extra,
  };
}

test('parseLocal reads the date, the time and the offset as written', () => {
  assert.deepEqual(parseLocal('2027-03-28T10:00:00+02:00'), { date: '2027-03-28', time: '10:00', offset: '+02:00' });
  assert.deepEqual(parseLocal('2027-03-27T23:30:00.000+01:00'), { date: '2027-03-27', time: '23:30', offset: '+01:00' });
  assert.deepEqual(parseLocal('2027-03-28T08:00:00Z'), { date: '2027-03-28', time: '08:00', offset: 'Z' });
  assert.deepEqual(parseLocal('2027-03-28T08:00:00+0000'), { date: '2027-03-28', time: '08:00', offset: '+00:00' });
  assert.equal(parseLocal('2027-03-28'), null);
  assert.equal(parseLocal(null), null);
  assert.equal(parseLocal('not a time'), null);
});

test('across the change to summer time in Amsterdam (2027-03-28) local dates and times come from the offset', () => {
  // 10:00 local is 09:00Z on the 27th (CET, +01:00) and 08:00Z on the 28th
  // (CEST, +02:00); 00:30 local on the 29th is still the 28th in UTC, and
  // 23:30 local on the 27th is 22:30Z the same day.
  const sessions = [
    session(1, '2027-03-27T09:00:00Z', '2027-03-27T10:00:00+01:00', '2027-03-27T09:30:00Z', '2027-03-27T10:30:00+01:00'),
    session(2, '2027-03-27T22:30:00Z', '2027-03-27T23:30:00+01:00', '2027-03-27T23:30:00Z', '2027-03-28T00:30:00+01:00'),
    session(3, '2027-03-28T00:30:00Z', '2027-03-28T01:30:00+01:00', '2027-03-28T01:30:00Z', '2027-03-28T03:30:00+02:00'),
    session(4, '2027-03-28T08:00:00Z', '2027-03-28T10:00:00+02:00', '2027-03-28T08:30:00Z', '2027-03-28T10:30:00+02:00'),
    session(5, '2027-03-28T22:30:00Z', '2027-03-29T00:30:00+02:00', '2027-03-28T23:00:00Z', '2027-03-29T01:00:00+02:00'),
  ];
  assert.deepEqual(sessions.map(sessionDate), ['2027-03-27', '2027-03-27', '2027-03-28', '2027-03-28', '2027-03-29']);
  assert.deepEqual(sessions.map(slotText), ['10:00–10:30', '23:30–00:30 (next day)', '01:30–03:30', '10:00–10:30', '00:30–01:00']);
  assert.deepEqual(sessionTimes(sessions[1]), { start: '23:30', end: '00:30', days: 1 });
  // The browser (Honolulu here) would put session 5 on the 28th and
  // session 4 on the 27th; the sale's offset says otherwise.
  assert.equal(new Date(sessions[4].starts_at).getDate(), 28);
  assert.equal(new Date(sessions[3].starts_at).getDate(), 27);
  const byDate = groupByDate(sessions);
  assert.deepEqual(Array.from(byDate.keys()), ['2027-03-27', '2027-03-28', '2027-03-29']);
  assert.deepEqual(byDate.get('2027-03-28').map((s) => s.id), ['3', '4']);
  assert.equal(sessionWhen(sessions[3], 'en-US'), 'Sun, Mar 28, 2027, 10:00–10:30');
  // Only the month asked for: the 1st of April's early session stays out of March.
  const april = session(6, '2027-03-31T22:30:00Z', '2027-04-01T00:30:00+02:00', '2027-03-31T23:00:00Z', '2027-04-01T01:00:00+02:00');
  const march = groupByDate(sessions.concat(april), { year: 2027, month: 3 });
  assert.ok(!march.has('2027-04-01'));
  assert.equal(march.size, 3);
  assert.deepEqual(Array.from(groupByDate([april], { year: 2027, month: 4 }).keys()), ['2027-04-01']);
});

test('a session without a local time (no time zone) falls back to UTC', () => {
  const s = { id: '1', starts_at: '2027-01-15T23:30:00Z', ends_at: '2027-01-16T00:30:00Z', state: 'on_sale', available: 1 };
  assert.equal(sessionDate(s), '2027-01-15');
  assert.equal(slotText(s), '23:30–00:30 (next day)');
  assert.equal(sessionDate({}), '');
  assert.equal(slotText({}), '');
});

test('month grids start on Monday (or the day asked), with blanks around the month', () => {
  // March 2027: the 1st is a Monday, 31 days: 5 weeks.
  const march = monthGrid(2027, 3);
  assert.equal(march.length, 5);
  assert.deepEqual(march[0][0], { date: '2027-03-01', day: 1 });
  assert.deepEqual(march[4].map((c) => c && c.day), [29, 30, 31, null, null, null, null]);
  // February 2027 starts on a Monday and has 28 days: exactly 4 weeks.
  assert.equal(monthGrid(2027, 2).length, 4);
  // August 2027 starts on a Sunday: 6 weeks from Monday, 5 from Sunday.
  const aug = monthGrid(2027, 8);
  assert.equal(aug.length, 6);
  assert.deepEqual(aug[0].map((c) => c && c.day), [null, null, null, null, null, null, 1]);
  const augSunday = monthGrid(2027, 8, 7);
  assert.equal(augSunday.length, 5);
  assert.deepEqual(augSunday[0][0], { date: '2027-08-01', day: 1 });
  // Every week has 7 cells; every day of the month once.
  for (const [y, m] of [[2027, 3], [2028, 2], [2026, 12]]) {
    const cells = monthGrid(y, m).flat();
    assert.equal(cells.length % 7, 0);
    assert.equal(cells.filter(Boolean).length, daysInMonth(y, m));
  }
  assert.equal(daysInMonth(2028, 2), 29);
  assert.equal(daysInMonth(2027, 2), 28);
});

test('dates and months: arithmetic without time zones', () => {
  assert.equal(addDays('2027-03-27', 1), '2027-03-28');
  assert.equal(addDays('2027-03-28', 1), '2027-03-29', 'the short day is a whole day');
  assert.equal(addDays('2027-01-01', -1), '2026-12-31');
  assert.equal(weekday('2027-03-28'), 7);
  assert.equal(weekday('2027-03-29'), 1);
  assert.deepEqual(addMonths({ year: 2027, month: 12 }, 1), { year: 2028, month: 1 });
  assert.deepEqual(addMonths({ year: 2027, month: 1 }, -1), { year: 2026, month: 12 });
  assert.deepEqual(addMonths({ year: 2027, month: 3 }, -15), { year: 2025, month: 12 });
  assert.ok(compareMonths({ year: 2027, month: 1 }, { year: 2026, month: 12 }) > 0);
  assert.equal(compareMonths({ year: 2027, month: 3 }, { year: 2027, month: 3 }), 0);
  assert.equal(monthKey({ year: 2027, month: 3 }), '2027-03');
  assert.deepEqual(monthOf('2027-03-28'), { year: 2027, month: 3 });
  assert.ok(inMonth('2027-03-28', { year: 2027, month: 3 }));
  assert.ok(!inMonth('2027-04-01', { year: 2027, month: 3 }));
  assert.ok(isDate('2028-02-29'));
  assert.ok(!isDate('2027-02-29'));
  assert.ok(!isDate('2027-3-1'));
});

test('a month’s range covers every offset from UTC−12 to UTC+14', () => {
  assert.deepEqual(monthRange({ year: 2027, month: 3 }), { from: '2027-02-28T10:00:00.000Z', to: '2027-04-01T12:00:00.000Z' });
  assert.deepEqual(monthRange({ year: 2027, month: 12 }), { from: '2027-11-30T10:00:00.000Z', to: '2028-01-01T12:00:00.000Z' });
  // The earliest moment of 1 March anywhere (Kiritimati, +14) and the last of 31 March anywhere (−12) are inside.
  const { from, to } = monthRange({ year: 2027, month: 3 });
  assert.ok(Date.parse(from) <= Date.parse('2027-03-01T00:00:00+14:00'));
  assert.ok(Date.parse(to) > Date.parse('2027-03-31T23:59:59-12:00'));
});

test('keys move the focus by day, week, to the week’s ends and by month', () => {
  assert.equal(moveDate('2027-03-28', 'ArrowRight'), '2027-03-29');
  assert.equal(moveDate('2027-03-01', 'ArrowLeft'), '2027-02-28');
  assert.equal(moveDate('2027-03-28', 'ArrowDown'), '2027-04-04');
  assert.equal(moveDate('2027-03-03', 'ArrowUp'), '2027-02-24');
  assert.equal(moveDate('2027-03-28', 'Home'), '2027-03-22', 'Monday of that week');
  assert.equal(moveDate('2027-03-24', 'End'), '2027-03-28', 'Sunday of that week');
  assert.equal(moveDate('2027-03-24', 'Home', 7), '2027-03-21', 'weeks from Sunday');
  assert.equal(moveDate('2027-03-31', 'PageUp'), '2027-02-28', 'the same day, or the month’s last');
  assert.equal(moveDate('2027-01-31', 'PageDown'), '2027-02-28');
  assert.equal(moveDate('2027-03-28', 'Enter'), null);
});

test('what a slot and a day offer', () => {
  const open = session(1, 'a', '2027-01-15T10:00:00+01:00', 'b', '2027-01-15T10:30:00+01:00', { available: 3, sold: 2 });
  const full = session(2, 'a', '2027-01-15T10:30:00+01:00', 'b', '2027-01-15T11:00:00+01:00', { available: 0, sold: 5 });
  const heldNow = session(3, 'a', '2027-01-15T11:00:00+01:00', 'b', '2027-01-15T11:30:00+01:00', { available: 0, held: 2, sold: 3 });
  const later = session(4, 'a', '2027-01-15T11:30:00+01:00', 'b', '2027-01-15T12:00:00+01:00', { available: 0, unreleased: 5 });
  const paused = session(5, 'a', '2027-01-15T12:00:00+01:00', 'b', '2027-01-15T12:30:00+01:00', { state: 'paused' });
  const closed = session(6, 'a', '2027-01-15T12:30:00+01:00', 'b', '2027-01-15T13:00:00+01:00', { state: 'closed', available: 0, withdrawn: 5 });
  const cancelled = session(7, 'a', '2027-01-15T13:00:00+01:00', 'b', '2027-01-15T13:30:00+01:00', { state: 'cancelled', available: 0 });
  const all = [open, full, heldNow, later, paused, closed, cancelled];
  assert.deepEqual(all.map(slotStatus), ['available', 'sold_out', 'none_now', 'later', 'paused', 'closed', 'cancelled']);
  assert.deepEqual(all.map((s) => slotStatusText(s, 'en-US')),
    ['3 left', 'sold out', 'none left right now', 'on sale later', 'paused', 'closed', 'cancelled']);
  assert.deepEqual(all.map(choosable), [true, false, false, false, false, false, false]);
  // A paused session with units available is still not choosable.
  assert.equal(choosable(paused), false);
  assert.deepEqual(daySummary(all), { slots: 7, open: 1, left: 3 });
  assert.equal(dayHint(daySummary(all), 'en-US'), '7 times (1 free), 3 left');
  assert.equal(dayHint(daySummary([open]), 'en-US'), '1 time, 3 left');
  assert.equal(dayHint(daySummary([full, paused]), 'en-US'), '2 times, none free');
  assert.equal(dayHint(daySummary([]), 'en-US'), 'no times');
  assert.equal(dayMark(daySummary(all), 'en-US'), '3');
  assert.equal(dayMark(daySummary([full]), 'en-US'), 'full');
  assert.equal(dayMark(daySummary([]), 'en-US'), '');
  assert.equal(dayHint({ slots: 16, open: 16, left: 1340 }, 'en-US'), '16 times, 1,340 left');
  assert.equal(dayLevel([]), 'none');
  assert.equal(dayLevel([full, paused]), 'full');
  assert.equal(dayLevel([open, full, heldNow, later]), 'few', '3 of 20 left');
  assert.equal(dayLevel([open]), 'open');
});

test('dayLevel: few when under a fifth of the day is left', () => {
  const s = (available, capacity) => ({ state: 'on_sale', available, capacity, starts_at_local: '2027-01-15T10:00:00+01:00' });
  assert.equal(dayLevel([s(1, 10), s(0, 10)]), 'few');
  assert.equal(dayLevel([s(4, 10), s(0, 10)]), 'open');
});

test('the first date with a free slot', () => {
  const a = session(1, 'x', '2027-01-15T10:00:00+01:00', 'y', '2027-01-15T10:30:00+01:00', { state: 'paused' });
  const b = session(2, 'x', '2027-01-16T10:00:00+01:00', 'y', '2027-01-16T10:30:00+01:00', { available: 0, sold: 5 });
  const c = session(3, 'x', '2027-01-17T10:00:00+01:00', 'y', '2027-01-17T10:30:00+01:00');
  const d = session(4, 'x', '2027-02-01T10:00:00+01:00', 'y', '2027-02-01T10:30:00+01:00');
  const byDate = groupByDate([d, c, b, a]);
  assert.equal(firstOpenDate(byDate, { year: 2027, month: 1 }), '2027-01-17');
  assert.equal(firstOpenDate(byDate, { year: 2027, month: 2 }), '2027-02-01');
  assert.equal(firstOpenDate(byDate, { year: 2027, month: 3 }), null);
  assert.equal(firstOpenDate(groupByDate([a, b]), null), null);
});

test('names come from the date itself, not the browser’s zone', () => {
  assert.equal(monthLabel({ year: 2027, month: 3 }, 'en-US'), 'March 2027');
  assert.equal(dayLabel('2027-03-28', 'en-US'), 'Sunday, March 28, 2027');
  assert.equal(shortDayLabel('2027-03-01', 'en-US'), 'Mon, Mar 1, 2027');
  assert.match(dayLabel('2027-03-28', 'en-GB'), /^Sunday,? 28 March 2027$/);
  const names = weekdayNames(1, 'en-US');
  assert.equal(names.length, 7);
  assert.deepEqual(names[0], { short: 'Mon', long: 'Monday' });
  assert.deepEqual(names[6], { short: 'Sun', long: 'Sunday' });
  assert.deepEqual(weekdayNames(7, 'en-US')[0], { short: 'Sun', long: 'Sunday' });
  assert.equal(timeZoneNote('America/New_York'), 'Times are in America/New York time.');
  assert.equal(timeZoneNote(null), 'Times are in UTC time.');
});

test('a local date’s midnight in the sale’s zone, across the change to summer time', () => {
  assert.equal(zoneOffsetMinutes('Europe/Amsterdam', Date.parse('2027-03-28T00:30:00Z')), 60);
  assert.equal(zoneOffsetMinutes('Europe/Amsterdam', Date.parse('2027-03-28T01:30:00Z')), 120);
  assert.equal(zoneOffsetMinutes('America/New_York', Date.parse('2027-01-15T12:00:00Z')), -300);
  assert.equal(zoneOffsetMinutes('Not/AZone', 0), 0);
  assert.equal(localMidnight('2027-03-28', 'Europe/Amsterdam'), '2027-03-27T23:00:00.000Z');
  assert.equal(localMidnight('2027-03-29', 'Europe/Amsterdam'), '2027-03-28T22:00:00.000Z');
  assert.equal(localMidnight('2027-01-15', 'Asia/Tokyo'), '2027-01-14T15:00:00.000Z');
  assert.equal(localMidnight('2027-01-15', 'UTC'), '2027-01-15T00:00:00.000Z');
});
