// The visitor's own entry on the verification page: the join number this
// browser holds for the sale (sale.js keeps the queue token in localStorage
// under `floodgate:sale:<id>`), and what the server says about that place.
//
// The join number is the entry the shuffle or draw permutes. The status
// answer names it (`entry`); the queue token carries it too (claim `n` of
// the signed JWT, readable without the key), so the page can say which
// entry is the visitor's even when the status cannot be asked. Reading the
// token here proves nothing: the page only uses it to fill in the number.

/** The stored queue token of sale `saleId`, or null. */
export function storedQueueToken(saleId, storage = globalThis.localStorage) {
  try {
    const raw = storage && storage.getItem('floodgate:sale:' + saleId);
    const st = raw ? JSON.parse(raw) : null;
    return st && typeof st.queue_token === 'string' ? st.queue_token : null;
  } catch {
    return null;
  }
}

function base64UrlDecode(s) {
  const b64 = s.replace(/-/g, '+').replace(/_/g, '/') + '==='.slice((s.length + 3) % 4);
  const bin = atob(b64);
  return new TextDecoder().decode(Uint8Array.from(bin, (c) => c.charCodeAt(0)));
}

/** The join number (claim `n`) of a queue token of sale `saleId`, or null. */
export function entryFromToken(token, saleId) {
  if (typeof token !== 'string') return null;
  const parts = token.split('.');
  if (parts.length !== 3) return null;
  try {
    const claims = JSON.parse(base64UrlDecode(parts[1]));
    if (saleId && claims.sale !== saleId) return null;
    return Number.isSafeInteger(claims.n) && claims.n > 0 ? claims.n : null;
  } catch {
    return null;
  }
}

/** A typed entry number ("1,234", " 17 ") as an integer ≥ 1, or null. */
export function parseEntry(input) {
  const s = String(input == null ? '' : input).replace(/[\s,._’']/g, '');
  if (!/^\d{1,10}$/.test(s)) return null;
  const n = Number(s);
  return n >= 1 ? n : null;
}

/**
 * What the server said about a place, in words, from a status answer
 * (`{state, position, entry}`); `place` is the place the browser
 * recomputed, to say whether they agree, and `serving` the line's serving
 * number (the sale view's `queue.serving`) when known: a waiting place's
 * position is its place less those already served. Returns `{text,
 * agrees}` where agrees is true, false, or null when the answer cannot be
 * compared.
 */
export function serverSays(status, { mode, winners, place, serving }) {
  if (!status || !status.state) return { text: '', agrees: null };
  const lottery = mode === 'lottery';
  const w = Number(winners) || 0;
  switch (status.state) {
    case 'won':
      return { text: 'The server says this entry won.', agrees: place == null ? null : place <= w };
    case 'lost': {
      const pos = status.position;
      const text = 'The server says this entry did not win' +
        (pos != null ? ' and is number ' + pos + ' on the waitlist now.' : '.');
      // The waitlist place shrinks as the waitlist is admitted, so only
      // won/lost is compared.
      return { text, agrees: place == null ? null : place > w };
    }
    case 'admitted':
      return { text: lottery ? 'The server says this entry was admitted (a winner, or from the waitlist).' : 'The server says this place was admitted.', agrees: null };
    case 'waiting': {
      const pos = status.position;
      const text = pos != null ? 'The server says this place is number ' + pos + ' in line now.' : 'The server says this place is waiting.';
      // The line moves between two answers, so only an exact match is
      // claimed; a difference may be the line moving.
      const exact = !lottery && place != null && pos != null && Number.isInteger(serving) && pos === place - serving;
      return { text, agrees: exact ? true : null };
    }
    case 'expired':
      return { text: 'The server says this place has expired.', agrees: null };
    case 'removed':
      return { text: 'The server says this place was removed by the organiser.', agrees: null };
    default:
      return { text: 'The server says: ' + status.state + '.', agrees: null };
  }
}
