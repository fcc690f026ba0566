// Helpers shared by admin.test.mjs and verify.test.mjs (buyer.test.mjs has
// its own): the browser, HTTP calls to the server under test, axe-core,
// screenshots and a tiny sequential test runner.

import { chromium } from 'playwright-core';
import { mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

export const BASE_URL = (process.env.BASE_URL || '').replace(/\/$/, '');
export const ADMIN_KEY = process.env.ADMIN_KEY || 'test-admin-key';
export const OUT_DIR = process.env.OUT_DIR || path.join(path.dirname(new URL(import.meta.url).pathname), 'out');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const AXE_SOURCE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

if (!BASE_URL) {
  console.error('BASE_URL must be set (run tests/browser/run.sh)');
  process.exit(2);
}
mkdirSync(OUT_DIR, { recursive: true });

export const DESKTOP = { viewport: { width: 1280, height: 800 }, locale: 'en-US', timezoneId: 'UTC' };
export const PHONE = { viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, locale: 'en-US', timezoneId: 'UTC' };

export function assert(cond, message) {
  if (!cond) throw new Error(message);
}

export async function shot(page, name) {
  const file = path.join(OUT_DIR, name);
  await page.screenshot({ path: file, fullPage: true });
  console.log(`    screenshot ${path.relative(process.cwd(), file)}`);
}

/** One HTTP call to the server: `{status, data}`. `admin: true` sends the admin key. */
export async function http(method, urlPath, { token, body, admin } = {}) {
  const headers = { Accept: 'application/json' };
  if (admin) headers.Authorization = `Bearer ${ADMIN_KEY}`;
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const res = await fetch(BASE_URL + urlPath, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = text; }
  return { status: res.status, data };
}

/** Joins a sale whose challenge is off (difficulty 0) as a fresh visitor: the join answer. */
export async function joinPlain(saleId) {
  const r = await http('POST', `/api/v1/sales/${saleId}/queue`);
  assert(r.status === 201, `join should be 201, got ${r.status} ${JSON.stringify(r.data)}`);
  return r.data;
}

/**
 * axe-core on the page as it is: every violation fails (these pages are
 * new, so they start clean). Evaluated through the DevTools protocol, since
 * the pages' Content-Security-Policy refuses inline scripts.
 */
export async function checkAxe(page, label) {
  if (!(await page.evaluate(() => !!window.axe))) await page.evaluate(AXE_SOURCE);
  const result = await page.evaluate(async () => {
    const r = await window.axe.run(document, { resultTypes: ['violations'] });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => n.target.join(' ')) }));
  });
  for (const v of result) console.log(`    axe ${label}: ${v.impact} ${v.id} (${v.help}) at ${v.nodes.slice(0, 3).join(', ')}`);
  console.log(`    axe ${label}: ${result.length} violation(s)`);
  assert(result.length === 0, `axe on ${label}: ${result.map((v) => `${v.impact} ${v.id}: ${v.help} (${v.nodes.join(', ')})`).join('; ')}`);
}

/** Collects uncaught page errors and Content-Security-Policy refusals. */
export function watchErrors(page, errors) {
  page.on('pageerror', (err) => errors.push(`page error at ${page.url()}: ${err.stack || err.message}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error' && /Content Security Policy|Refused to/i.test(msg.text())) errors.push(`console: ${msg.text()}`);
  });
}

export async function launch() {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
}

/** Polls `fn` until it returns a truthy value (which is returned) or `ms` pass. */
export async function until(fn, ms, what) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    assert(Date.now() < deadline, `timed out after ${ms / 1000} s waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/**
 * Runs `tests` ([{name, fn}]) one after the other, each with a timeout;
 * prints one line per test and "<n> passed, <m> failed"; exits non-zero
 * when anything failed. `setup()` and `teardown()` run around them. With
 * BROWSER_TEST_ONLY set (a regular expression), only the tests whose names
 * match it run.
 */
export async function runTests(tests, { timeoutMs = 90_000, setup, teardown } = {}) {
  // BROWSER_TEST_ONLY: a regular expression; only the tests whose names match run.
  const only = process.env.BROWSER_TEST_ONLY ? new RegExp(process.env.BROWSER_TEST_ONLY, 'i') : null;
  if (only) tests = tests.filter((t) => only.test(t.name));
  let passed = 0;
  let failed = 0;
  const t0 = Date.now();
  try {
    if (setup) await setup();
    for (const t of tests) {
      const started = Date.now();
      console.log(`- ${t.name}`);
      try {
        let timer;
        const timeout = new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs / 1000} s`)), timeoutMs);
        });
        await Promise.race([t.fn(), timeout]).finally(() => clearTimeout(timer));
        passed++;
        console.log(`  ok (${((Date.now() - started) / 1000).toFixed(1)} s)`);
      } catch (err) {
        failed++;
        console.log(`  FAILED (${((Date.now() - started) / 1000).toFixed(1)} s): ${err && err.stack ? err.stack : err}`);
        if (t.stopOnFailure) break;
      }
    }
  } catch (err) {
    console.error(err);
    failed = Math.max(1, tests.length - passed);
  } finally {
    if (teardown) await teardown().catch(() => {});
  }
  console.log(`${passed} passed, ${failed} failed (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
  process.exit(failed === 0 ? 0 : 1);
}
