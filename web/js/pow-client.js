// Runs the proof of work for the page: in module Web Workers
// (pow-worker.js) so the page stays responsive, or, where a module worker
// cannot start (an old browser), in the page itself between frames.

import { solve } from './pow.js';

const WORKER_URL = new URL('./pow-worker.js', import.meta.url);

/** Whether this browser can hash with WebCrypto here (it cannot outside a secure context, e.g. plain http on a LAN address). */
export function canSolve() {
  return !!(globalThis.crypto && globalThis.crypto.subtle && typeof globalThis.crypto.subtle.digest === 'function');
}

function unsupported() {
  const err = new Error('WebCrypto (crypto.subtle) is not available on this page');
  err.code = 'unsupported';
  return err;
}

/**
 * How many workers share the search: two where there are two cores or more.
 * WebCrypto hashes on the browser's own threads too, so more workers than
 * that measured no faster (tests/browser: a 2-core machine reached the same
 * rate with 1 and 2 workers and half of it with 4).
 */
export function workerCount() {
  const cores = (globalThis.navigator && navigator.hardwareConcurrency) || 1;
  return Math.max(1, Math.min(2, cores));
}

/**
 * Solves `challenge` at `bits`. `onProgress(attempts)` about every 100 ms.
 * Returns `{ promise, cancel }`; the promise resolves to `{nonce, attempts,
 * ms, where}` (`where`: 'worker' or 'page') or rejects with `err.code`
 * 'unsupported' (no WebCrypto here), 'cancelled', or 'failed'.
 */
export function startSolving({ challenge, bits, onProgress, workers = workerCount() }) {
  let cancelled = false;
  let stopWorkers = () => {};
  let rejectNow = () => {};
  const started = performance.now();

  const promise = new Promise((resolve, reject) => {
    rejectNow = reject;
    if (!canSolve()) return reject(unsupported());

    const inPage = () => {
      solve({
        challenge, bits, subtle: crypto.subtle, onProgress, shouldStop: () => cancelled,
        clock: () => performance.now(),
      }).then((found) => resolve({ ...found, ms: performance.now() - started, where: 'page' }), (err) => {
        if (cancelled) err.code = 'cancelled';
        reject(err);
      });
    };

    let pool;
    try {
      pool = Array.from({ length: workers }, () => new Worker(WORKER_URL, { type: 'module' }));
    } catch {
      return inPage();
    }
    const counts = new Array(pool.length).fill(0);
    let heard = false;
    let done = false;
    stopWorkers = () => {
      done = true;
      for (const w of pool) w.terminate();
    };
    pool.forEach((worker, k) => {
      worker.onmessage = (event) => {
        const m = event.data || {};
        heard = true;
        if (done) return;
        if (m.type === 'progress') {
          counts[k] = m.attempts;
          if (onProgress) onProgress(counts.reduce((a, b) => a + b, 0));
        } else if (m.type === 'found') {
          counts[k] = m.attempts;
          stopWorkers();
          // The workers share the nonces in turn and keep pace, so all of
          // them below the one found were tried: a better count than the
          // others' last progress reports, which a short solve may not have.
          const attempts = Math.max(counts.reduce((a, b) => a + b, 0), parseInt(m.nonce, 36) + 1);
          resolve({ nonce: m.nonce, attempts, ms: performance.now() - started, where: 'worker' });
        } else if (m.type === 'unsupported') {
          stopWorkers();
          reject(unsupported());
        } else {
          stopWorkers();
          const err = new Error(m.message || 'the solver failed');
          err.code = 'failed';
          reject(err);
        }
      };
      // A worker that fails before saying anything could not load (no
      // module workers here): solve in the page instead.
      worker.onerror = (event) => {
        if (event && event.preventDefault) event.preventDefault();
        if (done) return;
        stopWorkers();
        if (!heard) return inPage();
        const err = new Error('the solver stopped');
        err.code = 'failed';
        reject(err);
      };
      worker.postMessage({ challenge, bits, start: k, stride: pool.length });
    });
  });

  return {
    promise,
    cancel() {
      cancelled = true;
      stopWorkers();
      const err = new Error('cancelled');
      err.code = 'cancelled';
      rejectNow(err);
    },
  };
}
