// Unit tests of fairness.js: `node --test web/js/`.
//
// The vectors were computed twice, independently: by the Rust code of
// src/fairness.rs (copied verbatim into a throwaway crate outside the repo,
// with `draw` made public) and by a Python script written from the
// algorithm's description (hashlib.sha256, int.from_bytes(…, 'big')). Both
// gave the same numbers, which are hard-coded here.

import test from 'node:test';
import assert from 'node:assert/strict';
import { webcrypto } from 'node:crypto';

import {
  acceptLimit, describePlace, draw, firstU64, placeOf, seedMatchesCommitment, sha256Hex, shuffledOrder,
} from './fairness.js';

const subtle = webcrypto.subtle;
const SEED = '9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08';
// hex(sha256(SEED)) of the 64-character text, as the server publishes it.
const COMMITMENT = '7b3d979ca8330a94fa7e9e1b466d8b99e0bcdea1ec90596c0dcc8d7ef6b4300c';

test('the commitment is hex(sha256(seed text))', async () => {
  assert.equal(await sha256Hex('test', subtle), SEED); // SEED itself is sha256("test")
  assert.equal(await sha256Hex(SEED, subtle), COMMITMENT);
  assert.equal(await seedMatchesCommitment(SEED, COMMITMENT, subtle), true);
  assert.equal(await seedMatchesCommitment(SEED, COMMITMENT.toUpperCase(), subtle), true);
  assert.equal(await seedMatchesCommitment(SEED.replace('9', '8'), COMMITMENT, subtle), false);
  assert.equal(await seedMatchesCommitment(null, COMMITMENT, subtle), false);
});

test('P = 10: the order the server draws', async () => {
  assert.deepEqual(Array.from(await shuffledOrder(SEED, 10, { subtle })), [8, 4, 5, 7, 3, 6, 10, 9, 1, 2]);
});

test('P = 1000: first ten, last five and a checksum of the whole order', async () => {
  const order = await shuffledOrder(SEED, 1000, { subtle });
  assert.deepEqual(Array.from(order.slice(0, 10)), [942, 108, 357, 74, 809, 780, 192, 116, 499, 597]);
  assert.deepEqual(Array.from(order.slice(995)), [997, 133, 612, 285, 185]);
  // sum of (place × entry) over the whole order, from both reference runs
  let sum = 0;
  order.forEach((entry, i) => { sum += (i + 1) * entry; });
  assert.equal(sum, 255239893);
  const sorted = Array.from(order).sort((a, b) => a - b);
  assert.deepEqual(sorted, Array.from({ length: 1000 }, (_, i) => i + 1));
});

test('the batch size does not change the order', async () => {
  const a = await shuffledOrder(SEED, 300, { subtle, batch: 1 });
  const b = await shuffledOrder(SEED, 300, { subtle, batch: 7 });
  const c = await shuffledOrder(SEED, 300, { subtle, batch: 5000 });
  assert.deepEqual(a, b);
  assert.deepEqual(a, c);
});

test('tiny inputs', async () => {
  assert.deepEqual(Array.from(await shuffledOrder(SEED, 0, { subtle })), []);
  assert.deepEqual(Array.from(await shuffledOrder(SEED, 1, { subtle })), [1]);
  assert.deepEqual(Array.from(await shuffledOrder(SEED, 2, { subtle })), [1, 2]);
  await assert.rejects(shuffledOrder(SEED, -1, { subtle }), RangeError);
  await assert.rejects(shuffledOrder(SEED, 1.5, { subtle }), RangeError);
});

test('rejection sampling: a bound of 2^63 + 1 rejects about half of all draws', async () => {
  // Rust's draw(SEED, step, 2^63) for steps 1..=6, with the attempts Python counted.
  const expected = [
    [6760549855386404553n, 2], [4285200331906102589n, 1], [1180697798692003820n, 2],
    [5093207696852001918n, 5], [4540951946575294722n, 2], [7256331612370933954n, 2],
  ];
  for (let step = 1; step <= 6; step++) {
    const { j, attempts } = await draw(SEED, step, 1n << 63n, subtle);
    assert.equal(j, expected[step - 1][0], `step ${step}`);
    assert.equal(attempts, expected[step - 1][1], `attempts of step ${step}`);
  }
});

test('acceptLimit and firstU64', () => {
  assert.equal(acceptLimit(1n), 1n << 64n);
  assert.equal(acceptLimit(3n), (1n << 64n) - 1n); // 2^64 mod 3 = 1
  assert.equal(acceptLimit((1n << 63n) + 1n), (1n << 63n) + 1n);
  const bytes = new Uint8Array(32);
  bytes.set([0xff, 0, 0, 0, 0, 0, 0, 1]);
  assert.equal(firstU64(bytes.buffer), 0xff00000000000001n);
});

test('progress and stop', async () => {
  const seen = [];
  await shuffledOrder(SEED, 101, { subtle, batch: 40, onProgress: (done, total) => seen.push([done, total]) });
  assert.deepEqual(seen, [[40, 100], [80, 100], [100, 100]]);
  await assert.rejects(shuffledOrder(SEED, 101, { subtle, batch: 40, shouldStop: () => true }), (e) => e.code === 'stopped');
});

test('placeOf and describePlace', async () => {
  const order = await shuffledOrder(SEED, 10, { subtle });
  assert.equal(placeOf(order, 8), 1);
  assert.equal(placeOf(order, 2), 10);
  assert.equal(placeOf(order, '4'), 2);
  assert.equal(placeOf(order, 11), null);
  assert.equal(placeOf(order, 0), null);
  assert.equal(placeOf(order, 'x'), null);
  assert.deepEqual(describePlace(2, { mode: 'lottery', winners: 3 }), { kind: 'won', place: 2 });
  assert.deepEqual(describePlace(5, { mode: 'lottery', winners: 3 }), { kind: 'waitlist', place: 5, waitlistPlace: 2 });
  assert.deepEqual(describePlace(5, { mode: 'fifo' }), { kind: 'line', place: 5 });
  assert.equal(describePlace(null, { mode: 'fifo' }), null);
});
