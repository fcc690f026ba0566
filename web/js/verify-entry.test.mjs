// Unit tests of verify-entry.js: `node --test web/js/`.

import test from 'node:test';
import assert from 'node:assert/strict';

import { entryFromToken, parseEntry, serverSays, storedQueueToken } from './verify-entry.js';

const b64url = (obj) => Buffer.from(JSON.stringify(obj)).toString('base64url');
const token = (claims) => b64url({ alg: 'HS256', kid: 'k1' }) + '.' + b64url(claims) + '.c2ln';

test('entryFromToken reads claim n of the sale’s queue token', () => {
  assert.equal(entryFromToken(token({ sub: 'v', sale: 's1', pur: 'queue', n: 17 }), 's1'), 17);
  assert.equal(entryFromToken(token({ sub: 'v', sale: 's1', pur: 'queue', n: 17 }), 's2'), null);
  assert.equal(entryFromToken(token({ sub: 'v', sale: 's1', pur: 'queue' }), 's1'), null);
  assert.equal(entryFromToken(token({ sale: 's1', n: 0 }), 's1'), null);
  assert.equal(entryFromToken('not.a-token', 's1'), null);
  assert.equal(entryFromToken('a.b@@.c', 's1'), null);
  assert.equal(entryFromToken(null, 's1'), null);
});

test('storedQueueToken reads what sale.js stores', () => {
  const store = new Map([['floodgate:sale:s1', JSON.stringify({ queue_token: 'abc', start_ahead: 3 })], ['floodgate:sale:bad', '{']]);
  const storage = { getItem: (k) => (store.has(k) ? store.get(k) : null) };
  assert.equal(storedQueueToken('s1', storage), 'abc');
  assert.equal(storedQueueToken('s2', storage), null);
  assert.equal(storedQueueToken('bad', storage), null);
  assert.equal(storedQueueToken('s1', null), null);
});

test('parseEntry', () => {
  assert.equal(parseEntry('17'), 17);
  assert.equal(parseEntry(' 1,234 '), 1234);
  assert.equal(parseEntry('0'), null);
  assert.equal(parseEntry('-3'), null);
  assert.equal(parseEntry('2.5e3'), null);
  assert.equal(parseEntry(''), null);
  assert.equal(parseEntry(null), null);
});

test('serverSays compares won/lost with the recomputed place', () => {
  const ctx = { mode: 'lottery', winners: 3 };
  assert.deepEqual(serverSays({ state: 'won', position: 0 }, { ...ctx, place: 2 }).agrees, true);
  assert.deepEqual(serverSays({ state: 'won', position: 0 }, { ...ctx, place: 5 }).agrees, false);
  const lost = serverSays({ state: 'lost', position: 2 }, { ...ctx, place: 5 });
  assert.equal(lost.agrees, true);
  assert.match(lost.text, /number 2 on the waitlist/);
  assert.equal(serverSays({ state: 'lost', position: 2 }, { ...ctx, place: 1 }).agrees, false);
  assert.equal(serverSays({ state: 'waiting', position: 4 }, { mode: 'fifo', place: 4 }).agrees, null);
  assert.equal(serverSays({ state: 'waiting', position: 4 }, { mode: 'fifo', place: 4, serving: 0 }).agrees, true);
  assert.equal(serverSays({ state: 'waiting', position: 2 }, { mode: 'fifo', place: 4, serving: 2 }).agrees, true);
  assert.equal(serverSays({ state: 'waiting', position: 3 }, { mode: 'fifo', place: 4, serving: 2 }).agrees, null);
  assert.deepEqual(serverSays(null, ctx), { text: '', agrees: null });
});
