// The admin console's side of the API: the admin key, kept in this tab's
// sessionStorage only (never in a URL, a log or localStorage, so it goes
// when the tab closes), and calls to /admin/v1 with it.

import { api } from './api.js';

const KEY = 'floodgate:admin-key';
export const ADMIN = '/admin/v1';

let memoryKey = null; // when sessionStorage is unavailable

/** The stored admin key, or null. */
export function adminKey() {
  try {
    return window.sessionStorage.getItem(KEY) || memoryKey;
  } catch {
    return memoryKey;
  }
}

/** Keeps the admin key for this tab. */
export function setAdminKey(key) {
  memoryKey = key;
  try {
    window.sessionStorage.setItem(KEY, key);
  } catch {
    /* memory only */
  }
}

/** Forgets the admin key. */
export function forgetAdminKey() {
  memoryKey = null;
  try {
    window.sessionStorage.removeItem(KEY);
  } catch {
    /* nothing stored */
  }
}

/**
 * Calls the admin API with the stored key (or `opts.key`); resolves like
 * api.js's `api`: `{status, ok, data, res}`.
 */
export function adminApi(method, urlPath, opts = {}) {
  return api(method, urlPath, { ...opts, base: ADMIN, token: opts.key || adminKey() });
}

/** Calls the public API (no key). */
export function publicApi(method, urlPath, opts = {}) {
  return api(method, urlPath, opts);
}
