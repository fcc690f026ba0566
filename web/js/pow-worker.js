// The proof-of-work solver as a module Web Worker, so the page stays
// responsive while it hashes:
//
//   new Worker('/static/js/pow-worker.js', { type: 'module' })
//
// In:  { challenge, bits, batch?, start?, stride? }
// Out: { type: 'progress', attempts }            about every 100 ms
//      { type: 'found', nonce, attempts, ms }     done
//      { type: 'unsupported' }                    no crypto.subtle here (not a secure context)
//      { type: 'error', message }
//
// One problem per worker: the page terminates it to stop early.

import { solve } from './pow.js';

self.onmessage = async (event) => {
  const { challenge, bits, batch, start, stride } = event.data || {};
  const subtle = self.crypto && self.crypto.subtle;
  if (!subtle) {
    self.postMessage({ type: 'unsupported' });
    return;
  }
  try {
    const found = await solve({
      challenge, bits, subtle, batch, start, stride,
      onProgress: (attempts) => self.postMessage({ type: 'progress', attempts }),
    });
    self.postMessage({ type: 'found', ...found });
  } catch (err) {
    self.postMessage({ type: 'error', message: String((err && err.message) || err) });
  }
};
