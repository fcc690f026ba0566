// Unit tests of admin-format.js and admin-chart.js's pure parts: `node --test web/js/`.

import test from 'node:test';
import assert from 'node:assert/strict';

import { admissionBody, auditVerdict, countsText, fmtRate, parseStages, perMinute, saleBody, saleFigures, total } from './admin-format.js';
import { Series, chartGeometry, niceMax } from './admin-chart.js';

test('fmtRate, total, countsText', () => {
  assert.equal(fmtRate(3.46), '3.5/s');
  assert.equal(fmtRate(120.4), '120/s');
  assert.equal(fmtRate(null), '–');
  assert.equal(fmtRate(2, ''), '2');
  assert.equal(total({ active: 2, confirmed: 5 }), 7);
  assert.equal(total(null), 0);
  assert.equal(countsText({ active: 2, expired: 0, refund_required: 1 }), 'active 2 · refund required 1');
  assert.equal(countsText({}), 'none');
});

test('perMinute: the server’s activity when present, else the page’s own history', () => {
  const detail = { activity: { window_seconds: 60, holds_created: 12, orders_confirmed: 5, holds_expired: 2, refunds_required: 1, dead_letters: 3 } };
  assert.deepEqual(perMinute(detail, [], 0), { holds: 12, orders: 5, expired: 2, refunds: 1, dead: 3, from: 'server' });
  const half = { activity: { ...detail.activity, window_seconds: 30 } };
  assert.equal(perMinute(half, [], 0).holds, 24);
  const history = [
    { t: 0, holds: 0, orders: 0, expired: 0 },
    { t: 30_000, holds: 10, orders: 4, expired: 1 },
  ];
  assert.deepEqual(perMinute({}, history, 30_000), { holds: 20, orders: 8, expired: 2, refunds: null, dead: null, from: 'page' });
  assert.equal(perMinute({}, history.slice(0, 1), 0).holds, null);
  assert.equal(perMinute({}, [{ t: 0, holds: 0, orders: 0, expired: 0 }, { t: 2000, holds: 1, orders: 0, expired: 0 }], 2000).holds, null);
});

test('saleFigures: the rows of a waiting-room sale', () => {
  const sale = {
    state: 'on_sale', waiting_room: true,
    queue: { length: 1234, active: 3, admitted: 40, admission_rate: 2.5, estimated_wait_seconds: 600 },
    admission: { max_active: 5, admit_per_second: 3, mode: 'fixed' },
    availability: { available: 10, total: 20, held: 4, sold: 6 },
  };
  const rows = Object.fromEntries(saleFigures(sale, null, [], 0, 'en-US').map(([k, v, h]) => [k, h ? v + ' (' + h + ')' : v]));
  assert.equal(rows['State'], 'on sale');
  assert.equal(rows['Queue length'], '1,234');
  assert.equal(rows['Active / max'], '3 / 5');
  assert.equal(rows['Admission rate'], '2.5/s measured (configured 3/s)');
  assert.equal(rows['Wait at the back'], 'about 10 minutes');
  assert.equal(rows['Available'], '10 of 20');
  assert.equal(rows['Holds per minute'], '–');
  const noRoom = saleFigures({ ...sale, waiting_room: false, queue: null }, null, [], 0, 'en-US').map(([k]) => k);
  assert.ok(!noRoom.includes('Queue length'));
});

test('saleBody: the create form as the API’s body', () => {
  const f = {
    name: ' Spring tour ', mode: 'lottery', units: '200', stages: '30, 40, 30', starts_at: '2026-12-02T10:00',
    per_user_limit: '2', hold_ttl_seconds: '', admit_per_second: '0', max_active: '50', admission_ttl_seconds: '300',
    abandon_after_seconds: '60', difficulty_bits: '0', shuffle_prequeue: false,
  };
  assert.deepEqual(saleBody(f).body, {
    name: 'Spring tour', mode: 'lottery', units: { count: 200 }, stages: [30, 40, 30], starts_at: '2026-12-02T10:00:00.000Z',
    per_user_limit: 2, shuffle_prequeue: false,
    admission: { admit_per_second: 0, max_active: 50, admission_ttl_seconds: 300, abandon_after_seconds: 60 },
    challenge: { difficulty_bits: 0 },
  });
  assert.equal(saleBody({ ...f, name: ' ' }).field, 'name');
  assert.equal(saleBody({ ...f, units: '' }).field, 'units');
  assert.equal(saleBody({ ...f, stages: '30, x' }).field, 'stages');
  assert.equal(saleBody({ ...f, starts_at: 'soon' }).field, 'starts_at');
  // Values the form cannot judge go to the API as typed, for its 422.
  assert.deepEqual(saleBody({ ...f, units: '-5' }).body.units, { count: -5 });
  assert.deepEqual(parseStages('50 50'), [50, 50]);
  assert.equal(parseStages(''), null);
  assert.deepEqual(admissionBody({ max_active: '8', mode: 'adaptive', admit_per_second: '' }), { max_active: 8, mode: 'adaptive' });
});

test('auditVerdict', () => {
  const ok = { ok: true, checks: [{ name: 'a', ok: true }, { name: 'b', ok: true }], waiting_room: { ok: true, checks: [{ name: 'c', ok: true }] } };
  assert.deepEqual(auditVerdict(ok), { ok: true, title: 'Audit OK: all 3 checks passed.', failed: [] });
  const bad = { ok: false, checks: [{ name: 'no_double_sale', invariant: 'I1', ok: false, violations: 2, examples: ['unit 3', 'unit 4'] }, { name: 'b', ok: true }] };
  const v = auditVerdict(bad);
  assert.equal(v.ok, false);
  assert.equal(v.title, 'Audit FAILED: 1 of 2 checks failed.');
  assert.deepEqual(v.failed, ['I1 no_double_sale: 2 violation(s) (e.g. unit 3; unit 4)']);
  const drift = auditVerdict({ ok: true, checks: [], waiting_room: { ok: false, checks: [{ name: 'serving', ok: false, violations: 1, examples: [] }] } });
  assert.equal(drift.ok, false);
  assert.deepEqual(drift.failed, ['waiting room serving: 1 difference(s)']);
});

test('Series keeps the last minutes, in time order', () => {
  const s = new Series(10_000);
  s.add(0, 1);
  s.add(5000, 3);
  s.add(4000, 9); // out of order: dropped
  s.add(12_000, null);
  assert.deepEqual(s.points.map((p) => p.t), [5000, 12_000]);
  assert.equal(s.last(), 3);
  assert.equal(s.max(), 3);
});

test('niceMax and chartGeometry', () => {
  assert.equal(niceMax(0), 1);
  assert.equal(niceMax(3), 5);
  assert.equal(niceMax(7), 10);
  assert.equal(niceMax(120), 200);
  const pts = [{ t: 0, v: 0 }, { t: 50, v: 10 }, { t: 60, v: null }, { t: 100, v: 5 }];
  const g = chartGeometry(pts, { width: 100, height: 20, now: 100, windowMs: 100, yMax: 10, pad: 0 });
  assert.equal(g.line, 'M0 20 L50 0 M100 10');
  assert.equal(g.area, 'M0 20 L50 0 L50 20 L0 20 Z M100 10 L100 20 L100 20 Z');
  assert.deepEqual(chartGeometry([], { width: 1, height: 1, now: 0, yMax: 1 }), { line: '', area: '' });
});

test('pricesBody: the create form’s prices as the API’s, in minor units', async () => {
  const { pricesBody, pricesSummary, parseSections, parseUnitRanges, soldValue, categoryRow } = await import('./admin-format.js');
  assert.deepEqual(pricesBody({ currency: '', categories: [{ name: '', amount: '', covers: 'all', list: '' }] }), {});
  assert.deepEqual(pricesBody(undefined), {});
  const p = pricesBody({
    currency: 'eur',
    categories: [
      { name: ' Early bird ', amount: '30', covers: 'stages', list: '1' },
      { name: '', amount: '', covers: 'all', list: '' },
      { name: 'Regular', amount: '45.50', covers: 'stages', list: '2, 3' },
    ],
  });
  assert.deepEqual(p, {
    prices: { currency: 'EUR', categories: [{ name: 'Early bird', amount: 3000, stages: [1] }, { name: 'Regular', amount: 4550, stages: [2, 3] }] },
    rows: [0, 2],
  });
  assert.equal(pricesSummary(p.prices, 'en'), 'Early bird €30.00 (stage 1), Regular €45.50 (stages 2, 3)');
  assert.deepEqual(pricesBody({ currency: 'JPY', categories: [{ name: 'All', amount: '8,800', covers: 'all' }] }).prices,
    { currency: 'JPY', categories: [{ name: 'All', amount: 8800 }] });
  const seats = pricesBody({ currency: 'KWD', categories: [{ name: 'Front', amount: '12.5', covers: 'sections', list: 'A, B' }, { name: 'Back', amount: '7.25', covers: 'units', list: '1-100, 201-300' }] });
  assert.deepEqual(seats.prices.categories, [
    { name: 'Front', amount: 12500, sections: ['A', 'B'] },
    { name: 'Back', amount: 7250, units: [{ from: 1, to: 100 }, { from: 201, to: 300 }] },
  ]);
  // What the form can tell, named as the API would name it.
  assert.equal(pricesBody({ currency: '', categories: [{ name: 'x', amount: '1' }] }).field, 'prices.currency');
  assert.equal(pricesBody({ currency: 'EU', categories: [] }).field, 'prices.currency');
  assert.equal(pricesBody({ currency: 'EUR', categories: [] }).field, 'prices.categories[0].name');
  const bad = pricesBody({ currency: 'JPY', categories: [{ name: '', amount: '', list: '' }, { name: 'R', amount: '88.5', covers: 'all' }] });
  assert.equal(bad.field, 'prices.categories[0].amount');
  assert.deepEqual(bad.rows, [1]);
  assert.match(bad.error, /Price category 2 \(R\): JPY has no decimals/);
  assert.equal(pricesBody({ currency: 'EUR', categories: [{ name: 'R', amount: '1', covers: 'stages', list: 'one' }] }).field, 'prices.categories[0].stages');
  assert.equal(pricesBody({ currency: 'EUR', categories: [{ name: '', amount: '1', covers: 'all' }] }).field, 'prices.categories[0].name');
  // Sections and unit ranges as typed.
  assert.deepEqual(parseSections('A:10x20, Balcony : 5×12'), { sections: [{ name: 'A', rows: 10, seats_per_row: 20 }, { name: 'Balcony', rows: 5, seats_per_row: 12 }] });
  assert.match(parseSections('A 10 20').error, /A:10x20/);
  assert.match(parseSections('').error, /name:rows×seats/);
  assert.deepEqual(parseUnitRanges('7, 10..12'), [{ from: 7, to: 7 }, { from: 10, to: 12 }]);
  assert.equal(parseUnitRanges('a-b'), null);
  // The console's figures of a priced sale.
  const sale = { currency: 'EUR', availability: { categories: [{ name: 'A', amount: 3000, units: 5, available: 1, held: 1, sold: 3, unreleased: 0 }, { name: 'B', amount: 4550, units: 2, available: 0, held: 0, sold: 2, unreleased: 0 }] } };
  assert.deepEqual(soldValue(sale), { amount: 18100, currency: 'EUR' });
  assert.equal(soldValue({ currency: null, availability: {} }), null);
  assert.deepEqual(categoryRow(sale.availability.categories[0], 'EUR', 'en'), ['A', '€30.00', '5', '1', '1', '3', '0']);
});

test('saleBody: reserved seating and prices', () => {
  const parsed = saleBody({
    name: 'Seats', mode: 'fifo', seating: 'reserved', sections: 'A:2x3, B:1x4', units: '100', stages: '100',
    prices: { currency: 'EUR', categories: [{ name: 'Front', amount: '10', covers: 'sections', list: 'A' }, { name: 'Back', amount: '5', covers: 'sections', list: 'B' }] },
  });
  assert.deepEqual(parsed.body.units, { sections: [{ name: 'A', rows: 2, seats_per_row: 3 }, { name: 'B', rows: 1, seats_per_row: 4 }] });
  assert.deepEqual(parsed.body.prices.categories.map((c) => [c.name, c.amount, c.sections]), [['Front', 1000, ['A']], ['Back', 500, ['B']]]);
  assert.deepEqual(parsed.rows, [0, 1]);
  assert.equal(saleBody({ name: 'Seats', seating: 'reserved', sections: '' }).field, 'sections');
  assert.equal(saleBody({ name: 'x', units: '10', prices: { currency: 'EUR', categories: [{ name: 'A', amount: 'ten' }] } }).field, 'prices.categories[0].amount');
  assert.equal(saleBody({ name: 'x', units: '10' }).body.prices, undefined);
});

test('sessionsBody: a recurrence from the create form, or nothing, or the field that is wrong', async () => {
  const { sessionsBody, sessionsSummary, recurrenceCount } = await import('./admin-format.js');
  const f = { time_zone: 'Europe/Amsterdam', from: '2027-01-15', to: '2027-04-14', start: '10:00', end: '18:00', every: '30', length: '', except: '', weekdays: [1, 2, 3, 4, 5, 6, 7], scope: 'sale', no_overlap: false };
  assert.deepEqual(sessionsBody(f), { sessions: { time_zone: 'Europe/Amsterdam', recurrence: { from: '2027-01-15', to: '2027-04-14', start: '10:00', end: '18:00', every_minutes: 30 } } });
  assert.deepEqual(sessionsBody({ time_zone: 'Europe/Amsterdam', weekdays: [1, 2, 3, 4, 5, 6, 7] }), {}, 'a time zone alone is no recurrence');
  assert.deepEqual(sessionsBody(null), {});
  const week = sessionsBody({ ...f, weekdays: [5, 1, 3], except: '2027-02-01, 2027-02-03', length: '20', scope: 'session', no_overlap: true }).sessions;
  assert.deepEqual(week.recurrence.weekdays, [1, 3, 5]);
  assert.deepEqual(week.recurrence.except, ['2027-02-01', '2027-02-03']);
  assert.equal(week.recurrence.duration_minutes, 20);
  assert.equal(week.per_user_limit, 'session');
  assert.equal(week.no_overlap, true);
  assert.equal(sessionsBody({ ...f, time_zone: ' ' }).field, 'sessions.time_zone');
  assert.equal(sessionsBody({ ...f, from: '2027-02-30' }).field, 'sessions.recurrence.from');
  assert.equal(sessionsBody({ ...f, to: '2027-01-14' }).field, 'sessions.recurrence.to');
  assert.equal(sessionsBody({ ...f, start: '' }).field, 'sessions.recurrence.start');
  assert.equal(sessionsBody({ ...f, every: 'half an hour' }).field, 'sessions.recurrence.every_minutes');
  assert.equal(sessionsBody({ ...f, weekdays: [] }).field, 'sessions.recurrence.weekdays');
  assert.equal(sessionsBody({ ...f, except: '2027-02-01, soon' }).field, 'sessions.recurrence.except');
  // 90 days × 16 half hours, as the API makes them (tests/api/sessions.rs).
  assert.equal(recurrenceCount(sessionsBody(f).sessions.recurrence), 1440);
  // Mondays, Wednesdays and Fridays of 15 January to 14 April 2027 but two, 20-minute sessions every 30: 16 a day.
  assert.equal(recurrenceCount(week.recurrence), (39 - 2) * 16);
  assert.equal(sessionsSummary(sessionsBody(f).sessions, 'en-US'),
    'about 1,440 sessions: every 30 min from 10:00 to 18:00, 2027-01-15 to 2027-04-14, every day, in Europe/Amsterdam');
  assert.match(sessionsSummary(week, 'en-US'), /\(20 min each\), 2027-01-15 to 2027-04-14, Mon, Wed, Fri except 2027-02-01, 2027-02-03, in Europe\/Amsterdam; the per-person limit counts in each session; no overlapping sessions/);
  // saleBody carries them, general admission only.
  const sale = { name: 'Museum', mode: 'fifo', units: '5', stages: '', per_user_limit: '4', shuffle_prequeue: false, sessions: f };
  assert.deepEqual(saleBody(sale).body.sessions, sessionsBody(f).sessions);
  assert.equal(saleBody({ ...sale, seating: 'reserved', sections: 'A:1x2' }).field, 'seating');
});
