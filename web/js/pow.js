// Proof of work (SPEC §4a), the pure part: find a nonce such that
// SHA-256(challenge ":" nonce) starts with at least `bits` zero bits.
//
// No DOM here: the functions run in the page, in pow-worker.js and under
// `node --test` (pow.test.mjs). `solve` takes the SubtleCrypto to hash with,
// so the same loop runs in a worker, in the page as a fallback, and in node.

/** Longest nonce the server accepts. */
export const MAX_NONCE = 32;

/** Digests computed per round: one Promise.all over this many. */
export const DEFAULT_BATCH = 256;

/** Leading zero bits of a digest (counted from the first byte's most significant bit). */
export function leadingZeroBits(digest) {
  const bytes = digest instanceof Uint8Array ? digest : new Uint8Array(digest);
  let bits = 0;
  for (const b of bytes) {
    if (b !== 0) return bits + Math.clz32(b) - 24;
    bits += 8;
  }
  return bits;
}

/** Whether a digest has at least `bits` leading zero bits (stops at the first byte that decides). */
export function meetsDifficulty(digest, bits) {
  const bytes = digest instanceof Uint8Array ? digest : new Uint8Array(digest);
  if (bits <= 0) return true;
  if (bits > bytes.length * 8) return false;
  const whole = bits >> 3;
  for (let i = 0; i < whole; i++) if (bytes[i] !== 0) return false;
  const rest = bits & 7;
  return rest === 0 || bytes[whole] >> (8 - rest) === 0;
}

/** The nonce of attempt `i`: `i` in base 36 (11 characters at most for any safe integer). */
export function nonceAt(i) {
  return i.toString(36);
}

/** Expected attempts to meet `bits`: 2^bits. */
export function expectedAttempts(bits) {
  return 2 ** Math.max(0, bits);
}

/** The bytes hashed for one attempt: UTF-8 of challenge ":" nonce. */
export function attemptBytes(challenge, nonce) {
  return new TextEncoder().encode(challenge + ':' + nonce);
}

/**
 * Searches nonces `start`, `start + stride`, `start + 2·stride`, … until one
 * meets `bits`. Hashes `batch` attempts per round with `subtle.digest`
 * (all in flight at once, which is what makes WebCrypto fast), calls
 * `onProgress(attempts)` about every `progressMs`, and gives up, rejecting
 * with `err.code = 'stopped'`, when `shouldStop()` turns true between
 * rounds. Resolves to `{nonce, attempts, ms}`.
 */
export async function solve({
  challenge, bits, subtle, batch = DEFAULT_BATCH, start = 0, stride = 1,
  onProgress, progressMs = 100, shouldStop, clock = () => Date.now(),
}) {
  if (!subtle || typeof subtle.digest !== 'function') {
    const err = new Error('SubtleCrypto is not available');
    err.code = 'unsupported';
    throw err;
  }
  const started = clock();
  if (bits <= 0) return { nonce: '0', attempts: 0, ms: 0 };

  const prefix = new TextEncoder().encode(challenge + ':');
  // One buffer for every attempt: digest copies its input when called, so
  // the next attempt may overwrite it at once.
  const buf = new Uint8Array(prefix.length + MAX_NONCE);
  buf.set(prefix);
  const view = (nonce) => {
    for (let k = 0; k < nonce.length; k++) buf[prefix.length + k] = nonce.charCodeAt(k);
    return buf.subarray(0, prefix.length + nonce.length);
  };

  let attempts = 0;
  let lastProgress = started;
  let next = start;
  const pending = new Array(batch);
  const nonces = new Array(batch);
  for (;;) {
    for (let j = 0; j < batch; j++) {
      const nonce = nonceAt(next);
      next += stride;
      nonces[j] = nonce;
      pending[j] = subtle.digest('SHA-256', view(nonce));
    }
    const digests = await Promise.all(pending);
    for (let j = 0; j < batch; j++) {
      if (meetsDifficulty(digests[j], bits)) {
        attempts += j + 1;
        return { nonce: nonces[j], attempts, ms: clock() - started };
      }
    }
    attempts += batch;
    const t = clock();
    if (onProgress && t - lastProgress >= progressMs) {
      lastProgress = t;
      onProgress(attempts);
    }
    if (shouldStop && shouldStop()) {
      const err = new Error('stopped');
      err.code = 'stopped';
      throw err;
    }
  }
}
