// lib.js — shared by floodgate's k6 scenarios.
//
// Environment (the same for every scenario; see loadtest/README.md):
//   BASE            the server, e.g. http://127.0.0.1:18080 (required; loopback
//                   only). Start it with FLOODGATE_ENV=test and a port of your
//                   choice: the test configuration listens on port 0 (a random
//                   free port) unless FLOODGATE__SERVER__PORT is set.
//   ADMIN_KEY       admin key (test-admin-key, config/test.toml's)
//   WEBHOOK_SECRET  payment webhook secret (test-webhook-secret, config/test.toml's)
//   SALE            use this sale instead of creating one
//   JOIN_P99_MS, STATUS_P99_MS, HOLD_P99_MS   the latency thresholds (SPEC §8
//                   targets by default: 20, 20 (50 in flash.js), 50 ms)
import http from 'k6/http';
import crypto from 'k6/crypto';
import { check, fail } from 'k6';

if (!__ENV.BASE) {
  throw new Error('set BASE, e.g. k6 run -e BASE=http://127.0.0.1:18080 ... for a server started with ' +
    'FLOODGATE_ENV=test FLOODGATE__SERVER__PORT=18080 (see loadtest/README.md)');
}
export const BASE = __ENV.BASE.replace(/\/$/, '');
export const ADMIN_KEY = __ENV.ADMIN_KEY || 'test-admin-key';
export const WEBHOOK_SECRET = __ENV.WEBHOOK_SECRET || 'test-webhook-secret';

if (!/^https?:\/\/(127\.[0-9.]+|localhost|\[::1\])(:[0-9]+)?$/.test(BASE)) {
  throw new Error(`BASE must be a loopback address, got ${BASE}`);
}

// A latency threshold: `p(99)<N` with N from the environment variable
// `name` (milliseconds) or the SPEC target `targetMs`.
export function p99(name, targetMs) {
  const ms = Number(__ENV[name] || targetMs);
  if (!(ms > 0)) {
    throw new Error(`${name} must be a positive number of milliseconds, got ${__ENV[name]}`);
  }
  return `p(99)<${ms}`;
}

const adminHeaders = { Authorization: `Bearer ${ADMIN_KEY}`, 'Content-Type': 'application/json' };

// Creates a sale; `spec` overrides the defaults below. Returns its id.
export function createSale(spec) {
  const body = Object.assign(
    {
      name: 'k6',
      units: { count: 20000 },
      stages: [100],
      per_user_limit: 4,
      hold_ttl_seconds: 600,
      waiting_room: true,
      shuffle_prequeue: false,
      admission: { admit_per_second: 2000, max_active: 5000, admission_ttl_seconds: 300, abandon_after_seconds: 120 },
    },
    spec || {},
  );
  const res = http.post(`${BASE}/admin/v1/sales`, JSON.stringify(body), { headers: adminHeaders, tags: { name: 'admin' } });
  if (res.status !== 201) {
    fail(`create sale: HTTP ${res.status} ${res.body}`);
  }
  return res.json('id');
}

export function adminPost(path, body) {
  return http.post(`${BASE}${path}`, body ? JSON.stringify(body) : null, { headers: adminHeaders, tags: { name: 'admin' } });
}

export function adminGet(path) {
  return http.get(`${BASE}${path}`, { headers: adminHeaders, tags: { name: 'admin' } });
}

export function join(sale) {
  return http.post(`${BASE}/api/v1/sales/${sale}/queue`, null, { tags: { name: 'join' } });
}

export function status(sale, queueToken) {
  return http.get(`${BASE}/api/v1/sales/${sale}/queue/status`, {
    headers: { Authorization: `Bearer ${queueToken}` },
    tags: { name: 'status' },
  });
}

function randomId(prefix) {
  return `${prefix}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}${Math.random().toString(36).slice(2)}`;
}

export function hold(sale, admissionToken, quantity) {
  return http.post(`${BASE}/api/v1/sales/${sale}/holds`, JSON.stringify({ quantity }), {
    headers: {
      Authorization: `Bearer ${admissionToken}`,
      'Content-Type': 'application/json',
      'Idempotency-Key': randomId('k6-hold'),
    },
    tags: { name: 'hold' },
    // 409 (insufficient stock, limit) and 410 (sold out) are answers, not failures.
    responseCallback: http.expectedStatuses(201, 409, 410),
  });
}

// Pays a hold through the signed payment webhook.
export function pay(holdId) {
  const body = JSON.stringify({
    event_id: randomId('k6-evt'),
    hold_id: holdId,
    payment_reference: randomId('k6-pay'),
    status: 'succeeded',
  });
  const t = Math.floor(Date.now() / 1000);
  const sig = crypto.hmac('sha256', WEBHOOK_SECRET, `${t}.${body}`, 'hex');
  return http.post(`${BASE}/api/v1/payments/webhook`, body, {
    headers: { 'Content-Type': 'application/json', 'Floodgate-Signature': `t=${t},v1=${sig}` },
    tags: { name: 'webhook' },
  });
}

// Prints the sale's audit; fails the run if anything was oversold.
export function audit(sale) {
  const res = adminGet(`/admin/v1/sales/${sale}/audit`);
  if (res.status !== 200) {
    fail(`audit: HTTP ${res.status}`);
  }
  const a = res.json();
  const u = a.units;
  const oversold = Math.max(0, u.sold + u.held - u.total);
  console.log(`audit of ${sale}: total ${u.total}, available ${u.available}, held ${u.held}, sold ${u.sold}, ` +
    `unreleased ${u.unreleased}; ok ${a.ok}; oversold ${oversold}`);
  for (const c of a.checks) {
    console.log(`  [${c.ok ? 'ok' : 'FAIL'}] ${c.name} (${c.invariant}) violations ${c.violations}`);
  }
  const good = check(a, { 'audit ok': (x) => x.ok === true, 'nothing oversold': () => oversold === 0 });
  if (!good) {
    fail(`audit failed for sale ${sale}: ok=${a.ok}, oversold=${oversold}`);
  }
  return a;
}

export function quantity(limit) {
  return 1 + Math.floor(Math.random() * Math.min(4, limit || 4));
}
