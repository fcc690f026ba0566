// Unit tests of format.js (and of api.js's pure parts): `node --test web/js/`.
// Plain node:test and node:assert, no dependencies.

import test from 'node:test';
import assert from 'node:assert/strict';

import {
  aheadText, availabilityText, availablePercent, checkProgressText, fmtClock, fmtCountdown, fmtDate,
  fmtLongDuration, fmtNumber, fmtWait, heldTitle, parseSeats, plainError, plural, queueTitle,
  saleKinds, saleListExtras, saleMetaText, stateLabel, waitingLiveText,
} from './format.js';
import { errorOf, explain, path, retryAfterSeconds } from './api.js';

test('plural', () => {
  assert.equal(plural(1, 'ticket', 'tickets'), '1 ticket');
  assert.equal(plural(0, 'ticket', 'tickets'), '0 tickets');
  assert.equal(plural(2, 'person is', 'people are'), '2 people are');
});

test('fmtNumber groups digits in the given locale', () => {
  assert.equal(fmtNumber(1234567, 'en-US'), '1,234,567');
  assert.equal(fmtNumber('42', 'en-US'), '42');
  assert.equal(fmtNumber(0, 'en-US'), '0');
});

test('fmtClock: m:ss, then h:mm:ss', () => {
  assert.equal(fmtClock(0), '0:00');
  assert.equal(fmtClock(5), '0:05');
  assert.equal(fmtClock(59.9), '0:59');
  assert.equal(fmtClock(61), '1:01');
  assert.equal(fmtClock(3599), '59:59');
  assert.equal(fmtClock(3600), '1:00:00');
  assert.equal(fmtClock(3 * 3600 + 5 * 60 + 7), '3:05:07');
  assert.equal(fmtClock(-10), '0:00');
});

test('fmtLongDuration: days from two on', () => {
  assert.equal(fmtLongDuration(86400), '24:00:00');
  assert.equal(fmtLongDuration(2 * 86400), '2 days');
  assert.equal(fmtLongDuration(9 * 86400 + 3600), '9 days');
});

test('fmtCountdown rounds up and stops at 0:00', () => {
  assert.equal(fmtCountdown(299.2), '5:00');
  assert.equal(fmtCountdown(0.1), '0:01');
  assert.equal(fmtCountdown(0), '0:00');
  assert.equal(fmtCountdown(-3), '0:00');
  assert.equal(fmtCountdown(3 * 86400), '3 days');
});

test('fmtWait in words', () => {
  assert.equal(fmtWait(null), 'estimating…');
  assert.equal(fmtWait(undefined), 'estimating…');
  assert.equal(fmtWait(0), 'any moment now');
  assert.equal(fmtWait(5), 'any moment now');
  assert.equal(fmtWait(6), 'under a minute');
  assert.equal(fmtWait(59), 'under a minute');
  assert.equal(fmtWait(60), 'about 1 minute');
  assert.equal(fmtWait(150), 'about 3 minutes');
  assert.equal(fmtWait(3600), 'about 1 hour');
  assert.equal(fmtWait(3600 + 60), 'about 1 hour 1 minute');
  assert.equal(fmtWait(2 * 3600 + 30 * 60), 'about 2 hours 30 minutes');
});

test('fmtDate: a short local time, empty when unreadable', () => {
  const s = fmtDate('2026-12-01T10:00:00Z', 'en-US', 'UTC');
  assert.match(s, /Tue/);
  assert.match(s, /Dec/);
  assert.match(s, /10:00/);
  assert.equal(fmtDate('not a date', 'en-US', 'UTC'), '');
  assert.equal(fmtDate(null), '');
});

test('stateLabel', () => {
  assert.equal(stateLabel('on_sale', 'fifo'), 'On sale');
  assert.equal(stateLabel('scheduled', 'fifo'), 'Opens soon');
  assert.equal(stateLabel('scheduled', 'lottery'), 'Entries open');
  assert.equal(stateLabel('sold_out'), 'Sold out');
  assert.equal(stateLabel('closed'), 'Closed');
  assert.equal(stateLabel('paused'), 'Paused');
  assert.equal(stateLabel('something_new'), 'something_new');
});

test('availability, kinds and the meta line', () => {
  const sale = {
    mode: 'lottery', seating: 'reserved', per_user_limit: 4,
    availability: { total: 20000, available: 1234, unreleased: 5000 },
  };
  assert.equal(availabilityText(sale, 'en-US'), '1,234 of 20,000 available · 5,000 released later');
  assert.equal(availabilityText({ availability: { total: 2, available: 2, unreleased: 0 } }, 'en-US'), '2 of 2 available');
  assert.equal(availabilityText({}), '');
  assert.deepEqual(saleKinds(sale), ['Lottery', 'Reserved seating']);
  assert.deepEqual(saleKinds({ mode: 'fifo', seating: 'general' }), []);
  assert.equal(saleMetaText(sale, 'en-US'),
    'Lottery · Reserved seating · 1,234 of 20,000 available · 5,000 released later · up to 4 per person');
  assert.equal(saleMetaText({ mode: 'fifo', per_user_limit: 2, session_count: 1440, availability: { total: 7200, available: 7200, unreleased: 0 } }, 'en-US'),
    '1,440 time slots · 7,200 of 7,200 available · up to 2 per person');
  assert.equal(availablePercent({ total: 3, available: 1 }), 33);
  assert.equal(availablePercent({ total: 0, available: 0 }), 0);
  assert.equal(availablePercent(null), 0);
});

test('saleListExtras', () => {
  assert.equal(saleListExtras({ state: 'on_sale', queue: { length: 0 } }), '');
  assert.equal(saleListExtras({ state: 'on_sale', queue: { length: 1 }, estimated_wait_seconds: null }), '1 person in line');
  assert.equal(saleListExtras({ state: 'on_sale', queue: { length: 3 }, estimated_wait_seconds: 120 }),
    '3 people in line · wait about 2 minutes');
  assert.match(saleListExtras({ state: 'scheduled', mode: 'fifo', starts_at: '2026-12-01T10:00:00Z' }, 'en-US', 'UTC'), /^Opens Tue/);
  assert.match(saleListExtras({ state: 'scheduled', mode: 'lottery', starts_at: '2026-12-01T10:00:00Z' }, 'en-US', 'UTC'), /^Entries close /);
});

test('plainError: known codes in words, unknown ones from the message', () => {
  assert.equal(plainError({ code: 'sold_out' }, 410), 'Sorry, this sale is sold out.');
  assert.equal(plainError({ code: 'limit_exceeded' }, 409, { limit: 2 }), 'You have reached the limit of 2 tickets per person for this sale.');
  assert.equal(plainError({ code: 'limit_exceeded' }, 409), 'You have reached the limit per person for this sale.');
  assert.equal(plainError({ code: 'seat_taken', message: 'A/1/3' }, 409), 'Some of those seats were just taken. Please choose others. (A/1/3)');
  assert.equal(plainError({ code: 'invalid_request', message: 'quantity must be positive' }, 400),
    'That didn’t work: quantity must be positive.');
  assert.equal(plainError({ code: 'something_else', message: 'the thing broke' }, 400), 'The thing broke.');
  assert.equal(plainError({ code: 'something_else' }, 400), 'Something went wrong (something_else).');
  assert.equal(plainError(null, 502), 'Something went wrong on our side. Please try again.');
  // Sessions (SPEC §3): the time chosen is paused, over, overlapping, short or gone.
  assert.match(plainError({ code: 'session_paused' }, 409), /paused/);
  assert.match(plainError({ code: 'session_closed' }, 410), /no longer on sale/);
  assert.match(plainError({ code: 'session_overlap' }, 409), /overlaps/);
  assert.equal(plainError({ code: 'insufficient_stock' }, 409, { session: true }),
    'There aren’t that many tickets left at this time. Try a smaller number or another time.');
  assert.equal(plainError({ code: 'insufficient_stock' }, 409, { session: true, category: 'Standard' }),
    'There aren’t that many Standard tickets left at this time. Try a smaller number or another time.');
  assert.equal(plainError({ code: 'not_found', message: 'session not found' }, 404, { session: true }),
    'This time is no longer on offer. Please choose another time.');
  assert.equal(plainError({ code: 'not_found', message: 'hold not found' }, 404), 'Hold not found.');
  assert.equal(plainError(null, 0), 'Something went wrong (http_0).');
  assert.match(plainError({ code: 'access_denied' }, 403), /not possible from your network/);
  assert.match(plainError({ code: 'place_removed' }, 403), /organiser removed this place/);
  for (const code of ['challenge_required', 'challenge_failed', 'challenge_expired', 'challenge_reused']) {
    assert.match(plainError({ code }, 403), /browser could not be checked/);
  }
});

test('the waiting view in words', () => {
  const fifo = { mode: 'fifo', shuffle_prequeue: false };
  assert.equal(queueTitle({}, fifo), 'You’re in line');
  assert.equal(queueTitle({ prequeue: true }, fifo), 'You’re in the waiting room');
  assert.equal(queueTitle({}, { mode: 'lottery' }), 'You’re entered in the lottery');

  assert.equal(waitingLiveText({ position: 3, ahead: 2, estimated_wait_seconds: 2 }, fifo, 'en-US'),
    'Your place in line is 3. 2 people are ahead of you. Estimated wait: any moment now.');
  assert.equal(waitingLiveText({ position: 2, ahead: 1, estimated_wait_seconds: null }, fifo, 'en-US'),
    'Your place in line is 2. 1 person is ahead of you. Estimating the wait…');
  assert.equal(waitingLiveText({ position: 1, ahead: 0 }, fifo), 'You’re next! Your place is 1.');
  assert.equal(waitingLiveText({ position: 1200, ahead: 1199, estimated_wait_seconds: 90, paused: true }, fifo, 'en-US'),
    'Your place in line is 1,200. 1,199 people are ahead of you. Estimating the wait… The sale is paused.');
  assert.match(waitingLiveText({ prequeue: true, position: 7 }, { shuffle_prequeue: true }), /random place/);
  assert.equal(waitingLiveText({ prequeue: true, position: 7 }, fifo, 'en-US'),
    'You’re in the waiting room. Your place in line is 7.');
  assert.equal(waitingLiveText({}, { mode: 'lottery' }), 'You’re entered. Winners are drawn when entries close.');

  assert.equal(aheadText(0), 'You are next');
  assert.equal(aheadText(1), '1 person ahead');
  assert.equal(aheadText(5), '5 people ahead');
});

test('heldTitle', () => {
  assert.equal(heldTitle(1, 1), 'Your ticket is held');
  assert.equal(heldTitle(2, 2), 'Your 2 tickets are held');
  assert.equal(heldTitle(undefined, 3), 'Your 3 tickets are held');
});

test('parseSeats', () => {
  assert.deepEqual(parseSeats('A/1/3, A/1/4', 4), { seats: ['A/1/3', 'A/1/4'] });
  assert.deepEqual(parseSeats(' A/1/3;A/1/3\nB/2/1 ', 4), { seats: ['A/1/3', 'B/2/1'] });
  assert.match(parseSeats('', 4).error, /at least one seat/);
  assert.match(parseSeats('A/1/1 A/1/2 A/1/3', 2).error, /up to 2 seats/);
  assert.match(parseSeats('A/1/1, A-1-2', 4).error, /Check: A-1-2\./);
  assert.deepEqual(parseSeats('A/1/1 A/1/2', null), { seats: ['A/1/1', 'A/1/2'] });
});

test('checkProgressText', () => {
  assert.equal(checkProgressText(1234, 16384, 'en-US'), '1,234 of about 16,384 checks');
});

// api.js, the parts that need no network.

test('errorOf reads the error body, or names the status', () => {
  assert.deepEqual(errorOf({ status: 409, data: { error: { code: 'seat_taken', message: 'A/1/1' } } }),
    { code: 'seat_taken', message: 'A/1/1' });
  assert.deepEqual(errorOf({ status: 502, data: null }), { code: 'http_502', message: '' });
  assert.deepEqual(errorOf(null), { code: 'http_0', message: '' });
  assert.equal(explain({ status: 410, data: { error: { code: 'sold_out', message: 'sold out' } } }), 'Sorry, this sale is sold out.');
});

test('retryAfterSeconds: seconds or an HTTP date, at least 1', () => {
  const res = (value) => new Response(null, { headers: value == null ? {} : { 'Retry-After': value } });
  assert.equal(retryAfterSeconds(res('3')), 3);
  assert.equal(retryAfterSeconds(res('0')), 1);
  assert.equal(retryAfterSeconds(res(null)), null);
  assert.equal(retryAfterSeconds(res('soon')), null);
  const at = Date.parse('2030-01-01T00:00:10Z');
  assert.equal(retryAfterSeconds(res(new Date(at).toUTCString()), at - 10_000), 10);
  assert.equal(retryAfterSeconds(null), null);
});

test('path encodes each segment', () => {
  assert.equal(path('sales', 'a b/c', 'queue'), '/sales/a%20b%2Fc/queue');
});
