// Verifiable random order (SPEC I8), the pure part: the pre-queue shuffle
// and the lottery draw recomputed from the revealed seed, exactly as
// src/fairness.rs computes them on the server.
//
// 1. The commitment published at creation is hex(sha256(seed)) of the seed's
//    text (64 hex characters).
// 2. Entries are the join numbers 1..=P; start from a = [1, 2, …, P].
// 3. Fisher–Yates from the back: for i = P-1 down to 1, draw j uniformly
//    from 0..=i and swap a[i] with a[j].
// 4. The draw for step i: for k = 0, 1, … take the first 8 bytes of
//    sha256(`${seed}:${i}:${k}`) as a big-endian u64 r; accept the first
//    r < 2^64 - (2^64 mod (i+1)) and take j = r mod (i+1).
// 5. a[0] is first in line (or the first winner), a[1] second, and so on.
//
// No DOM here: the functions run in the page and under `node --test`
// (fairness.test.mjs), which checks them against vectors computed by the
// Rust code and by an independent Python script. Each function takes the
// SubtleCrypto to hash with, so the same code runs in both.

const TWO_64 = 1n << 64n;

/** Digests computed per round of the shuffle: one Promise.all over this many. */
export const DEFAULT_BATCH = 2048;

/** Largest P the page recomputes (a u32 on the server; far beyond any sale). */
export const MAX_ENTRIES = 50_000_000;

function defaultSubtle() {
  const c = globalThis.crypto;
  return c && c.subtle ? c.subtle : null;
}

function hex(buffer) {
  return Array.from(new Uint8Array(buffer), (b) => b.toString(16).padStart(2, '0')).join('');
}

/** hex(sha256(text)), lower case. */
export async function sha256Hex(text, subtle = defaultSubtle()) {
  return hex(await subtle.digest('SHA-256', new TextEncoder().encode(text)));
}

/** Whether `seed` hashes to `commitment` (case-insensitive hex). */
export async function seedMatchesCommitment(seed, commitment, subtle = defaultSubtle()) {
  if (typeof seed !== 'string' || typeof commitment !== 'string') return false;
  return (await sha256Hex(seed, subtle)) === commitment.trim().toLowerCase();
}

/** The first 8 bytes of a digest as a big-endian u64 (BigInt). */
export function firstU64(digest) {
  return new DataView(digest instanceof ArrayBuffer ? digest : digest.buffer).getBigUint64(0, false);
}

/**
 * Values of r at or above this make small j more likely; rejected.
 * `bound` is i + 1 (BigInt).
 */
export function acceptLimit(bound) {
  return TWO_64 - (TWO_64 % bound);
}

function message(seed, step, attempt) {
  return new TextEncoder().encode(seed + ':' + step + ':' + attempt);
}

/**
 * The uniform draw from 0..=max for step `step` (both BigInt or numbers),
 * with its rejection sampling: `{j, attempts}` (j a BigInt).
 */
export async function draw(seed, step, max, subtle = defaultSubtle()) {
  const bound = BigInt(max) + 1n;
  const limit = acceptLimit(bound);
  for (let k = 0; ; k++) {
    const r = firstU64(await subtle.digest('SHA-256', message(seed, step, k)));
    if (r < limit) return { j: r % bound, attempts: k + 1 };
  }
}

/**
 * The order of entries 1..=count drawn from `seed`: element 0 is first.
 * Resolves to a Uint32Array. The draws of all steps are independent of the
 * array, so they are hashed `batch` at a time (all in flight at once, which
 * is what makes WebCrypto fast) and then applied from the back in order;
 * a rare rejected draw is redone on its own. `onProgress(done, total)` is
 * called after each batch; `shouldStop()` turning true between batches
 * rejects with `err.code = 'stopped'`.
 */
export async function shuffledOrder(seed, count, {
  subtle = defaultSubtle(), batch = DEFAULT_BATCH, onProgress = null, shouldStop = null,
} = {}) {
  if (!Number.isInteger(count) || count < 0 || count > MAX_ENTRIES) {
    throw new RangeError('count must be an integer from 0 to ' + MAX_ENTRIES);
  }
  if (!subtle) {
    const e = new Error('WebCrypto (crypto.subtle) is not available');
    e.code = 'unsupported';
    throw e;
  }
  const order = new Uint32Array(count);
  for (let n = 0; n < count; n++) order[n] = n + 1;
  const steps = Math.max(0, count - 1);
  let done = 0;
  // Steps i = count-1 … 1, in rounds of `batch`.
  for (let hi = count - 1; hi >= 1; hi -= batch) {
    if (shouldStop && shouldStop()) {
      const e = new Error('stopped');
      e.code = 'stopped';
      throw e;
    }
    const lo = Math.max(1, hi - batch + 1);
    const pending = [];
    for (let i = hi; i >= lo; i--) pending.push(subtle.digest('SHA-256', message(seed, i, 0)));
    const digests = await Promise.all(pending);
    for (let i = hi, d = 0; i >= lo; i--, d++) {
      const bound = BigInt(i + 1);
      const r = firstU64(digests[d]);
      const j = r < acceptLimit(bound) ? Number(r % bound) : Number((await draw(seed, i, i, subtle)).j);
      const t = order[i];
      order[i] = order[j];
      order[j] = t;
    }
    done += hi - lo + 1;
    if (onProgress) onProgress(done, steps);
  }
  return order;
}

/** 1-based place of `entry` in `order` (1 = first), or null when it is not there. */
export function placeOf(order, entry) {
  const e = Number(entry);
  if (!Number.isInteger(e) || e < 1) return null;
  const idx = order.indexOf(e);
  return idx < 0 ? null : idx + 1;
}

/**
 * What a place means for a visitor: `{kind: 'won' | 'waitlist' | 'line',
 * place, waitlistPlace}`. In a lottery the first `winners` places won and
 * the rest form the waitlist in draw order; in a shuffled pre-queue the
 * place is the place in line.
 */
export function describePlace(place, { mode, winners } = {}) {
  if (place == null) return null;
  if (mode === 'lottery') {
    const w = Number(winners) || 0;
    return place <= w ? { kind: 'won', place } : { kind: 'waitlist', place, waitlistPlace: place - w };
  }
  return { kind: 'line', place };
}
