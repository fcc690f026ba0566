// Unit tests of pow.js: `node --test web/js/`. Solutions are checked with
// node:crypto, independently of the WebCrypto the solver hashes with.

import test from 'node:test';
import assert from 'node:assert/strict';
import { createHash, webcrypto } from 'node:crypto';

import {
  MAX_NONCE, attemptBytes, expectedAttempts, leadingZeroBits, meetsDifficulty, nonceAt, solve,
} from './pow.js';

const sha256 = (s) => createHash('sha256').update(s, 'utf8').digest();

test('leadingZeroBits counts from the first byte’s most significant bit', () => {
  assert.equal(leadingZeroBits(new Uint8Array([0x80, 0])), 0);
  assert.equal(leadingZeroBits(new Uint8Array([0x40])), 1);
  assert.equal(leadingZeroBits(new Uint8Array([0x01])), 7);
  assert.equal(leadingZeroBits(new Uint8Array([0x00, 0xff])), 8);
  assert.equal(leadingZeroBits(new Uint8Array([0x00, 0x00, 0x1f])), 19);
  assert.equal(leadingZeroBits(new Uint8Array([0, 0])), 16);
  assert.equal(leadingZeroBits(new Uint8Array([0x00, 0x08]).buffer), 12);
  assert.equal(leadingZeroBits(new Uint8Array(32)), 256);
});

test('meetsDifficulty agrees with leadingZeroBits', () => {
  for (let i = 0; i < 2000; i++) {
    const digest = sha256('agree:' + i);
    const zeros = leadingZeroBits(digest);
    for (const bits of [0, 1, 2, 3, 7, 8, 9, 12, 16, 17, 24, 256, 257]) {
      assert.equal(meetsDifficulty(digest, bits), zeros >= bits, `digest ${i}, ${bits} bits`);
    }
  }
  assert.equal(meetsDifficulty(new Uint8Array([0, 0, 0x7f]), 17), true);
  assert.equal(meetsDifficulty(new Uint8Array([0, 0, 0x7f]), 18), false);
  assert.equal(meetsDifficulty(new Uint8Array([0, 0, 0x80]), 16), true);
  assert.equal(meetsDifficulty(new Uint8Array([0, 0, 0x80]), 17), false);
});

test('nonces are short ASCII and distinct', () => {
  assert.equal(nonceAt(0), '0');
  assert.equal(nonceAt(35), 'z');
  assert.equal(nonceAt(36), '10');
  const big = nonceAt(Number.MAX_SAFE_INTEGER);
  assert.ok(big.length <= MAX_NONCE && /^[0-9a-z]+$/.test(big), big);
  const seen = new Set();
  for (let i = 0; i < 5000; i++) seen.add(nonceAt(i));
  assert.equal(seen.size, 5000);
});

test('expectedAttempts is 2^bits', () => {
  assert.equal(expectedAttempts(0), 1);
  assert.equal(expectedAttempts(14), 16384);
  assert.equal(expectedAttempts(18), 262144);
  assert.equal(expectedAttempts(-3), 1);
});

test('attemptBytes is UTF-8 of challenge ":" nonce', () => {
  assert.deepEqual(Array.from(attemptBytes('ab', '1z')), [0x61, 0x62, 0x3a, 0x31, 0x7a]);
});

test('solve finds a nonce that node:crypto accepts', async () => {
  const challenge = '12.1767225600000.0123456789abcdef.' + 'f'.repeat(32) + '.k1.sale_test';
  for (const bits of [1, 8, 12]) {
    const found = await solve({ challenge, bits, subtle: webcrypto.subtle, batch: 64 });
    assert.ok(found.nonce.length >= 1 && found.nonce.length <= MAX_NONCE);
    assert.ok(leadingZeroBits(sha256(challenge + ':' + found.nonce)) >= bits, `${bits} bits, nonce ${found.nonce}`);
    assert.ok(found.attempts >= 1);
    // The first solution in order: no earlier nonce meets the difficulty.
    const index = parseInt(found.nonce, 36);
    assert.equal(found.attempts, index + 1);
    for (let i = 0; i < index; i++) {
      assert.ok(!meetsDifficulty(sha256(challenge + ':' + nonceAt(i)), bits), `nonce ${nonceAt(i)} was skipped`);
    }
  }
});

test('solve with stride searches its own share of nonces', async () => {
  const challenge = 'stride-test';
  const found = await solve({ challenge, bits: 8, subtle: webcrypto.subtle, batch: 16, start: 1, stride: 3 });
  assert.equal(parseInt(found.nonce, 36) % 3, 1);
  assert.ok(leadingZeroBits(sha256(challenge + ':' + found.nonce)) >= 8);
});

test('solve with 0 bits answers "0" at once', async () => {
  assert.deepEqual(await solve({ challenge: 'x', bits: 0, subtle: webcrypto.subtle }), { nonce: '0', attempts: 0, ms: 0 });
});

test('solve reports progress and can be stopped', async () => {
  const seen = [];
  let t = 0;
  const err = await solve({
    challenge: 'never', bits: 200, subtle: webcrypto.subtle, batch: 32,
    clock: () => (t += 50), progressMs: 100,
    onProgress: (n) => seen.push(n),
    shouldStop: () => seen.length >= 3,
  }).catch((e) => e);
  assert.equal(err.code, 'stopped');
  assert.ok(seen.length === 3 && seen[0] > 0 && seen[1] > seen[0] && seen[2] > seen[1], String(seen));
});

test('solve without SubtleCrypto says so', async () => {
  const err = await solve({ challenge: 'x', bits: 4, subtle: undefined }).catch((e) => e);
  assert.equal(err.code, 'unsupported');
});
