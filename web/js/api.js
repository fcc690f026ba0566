// The client of floodgate's public API (/api/v1): one fetch wrapper that
// always resolves to the answer (status, parsed JSON body) and rejects only
// when the network fails, the error body's code and message, Retry-After,
// and the server's clock (from the Date header) for countdowns.

import { plainError } from './format.js';

export const API = '/api/v1';

// Offset between the server's clock (Date header) and ours, so countdowns
// are right on a device whose clock is off.
let skewMs = 0;

/** Notes the server's clock from an answer's Date header. */
export function noteServerDate(res, localNow = Date.now()) {
  const h = res && res.headers && res.headers.get('Date');
  if (!h) return;
  const server = Date.parse(h);
  if (isNaN(server)) return;
  const skew = server + 500 - localNow; // Date has one-second resolution
  skewMs = Math.abs(skew) > 1500 ? skew : 0;
}

/** The server's time now, in milliseconds, as best we know it. */
export function now() {
  return Date.now() + skewMs;
}

/** Seconds from a Retry-After header (seconds or HTTP date), or null. */
export function retryAfterSeconds(res, localNow = Date.now()) {
  const h = res && res.headers && res.headers.get('Retry-After');
  if (!h) return null;
  const n = Number(h);
  if (!isNaN(n)) return Math.max(1, n);
  const at = Date.parse(h);
  return isNaN(at) ? null : Math.max(1, Math.ceil((at - localNow) / 1000));
}

/** The `{code, message}` of an answer's error body (`http_<status>` without one). */
export function errorOf(r) {
  const e = r && r.data && r.data.error;
  return { code: (e && e.code) || 'http_' + (r ? r.status : 0), message: (e && e.message) || '' };
}

/** Plain words for a failed answer. */
export function explain(r, ctx) {
  return plainError(errorOf(r), r ? r.status : 0, ctx);
}

/** A fresh random Idempotency-Key. */
export function randomKey() {
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

/** `/sales/{sale}` and the like, each segment encoded. */
export function path(...segments) {
  return segments.map((s) => '/' + encodeURIComponent(s)).join('');
}

/**
 * Calls the API. Resolves to `{status, ok, data, res}` (data: the parsed JSON
 * body or null); rejects only when the network fails (`err.network = true`).
 * `opts`: `token` (Authorization: Bearer), `headers`, `body` (sent as JSON),
 * `base` (another prefix than /api/v1: the admin console's /admin/v1).
 */
export async function api(method, urlPath, opts = {}) {
  const headers = { Accept: 'application/json' };
  if (opts.token) headers.Authorization = 'Bearer ' + opts.token;
  Object.assign(headers, opts.headers || {});
  const init = { method, headers, cache: 'no-store', credentials: 'omit' };
  if (opts.body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(opts.body);
  }
  let res;
  try {
    res = await fetch((opts.base == null ? API : opts.base) + urlPath, init);
  } catch (err) {
    const e = new Error('network: ' + (err && err.message));
    e.network = true;
    throw e;
  }
  noteServerDate(res);
  let data = null;
  try {
    const body = await res.text();
    if (body) data = JSON.parse(body);
  } catch {
    data = null;
  }
  return { status: res.status, ok: res.ok, data, res };
}
