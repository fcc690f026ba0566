// flash.js — a whole flash sale: VISITORS arrive in a burst, poll at the pace
// the server asks (poll_after_ms), are admitted, hold 1–4 units, pay (90 %)
// or walk away; stages 30/40/30 open every STAGE_INTERVAL seconds; the run
// ends at sold-out (every visitor is then told so and stops) and prints the
// time to sell-out and the audit.
//   k6 run -e BASE=http://127.0.0.1:18080 -e VISITORS=2000 -e UNITS=2000 loadtest/k6/flash.js
// (k6 runs one VU per visitor: for 200,000 visitors use the fgdrive driver.)
// Knobs: VISITORS (2000), UNITS (2000), STAGE_INTERVAL (10 s), PAY_RATIO (0.9),
// HOLD_TTL (20 s), MAX_DURATION (10m), HOLD_P99_MS (50), STATUS_P99_MS (50).
// Fails (exit 99) unless the sale sold out within MAX_DURATION.
import { check, sleep } from 'k6';
import { Counter, Trend } from 'k6/metrics';
import { adminGet, adminPost, audit, createSale, hold, join, p99, pay, quantity, status } from './lib.js';

const VISITORS = Number(__ENV.VISITORS || 2000);
const UNITS = Number(__ENV.UNITS || 2000);
const STAGE_INTERVAL = Number(__ENV.STAGE_INTERVAL || 10);
const PAY_RATIO = Number(__ENV.PAY_RATIO === undefined ? 0.9 : __ENV.PAY_RATIO);
const HOLD_TTL = Number(__ENV.HOLD_TTL || 20);
const sellOut = new Trend('time_to_sell_out_s');
const soldOut = new Counter('sold_out');

export const options = {
  scenarios: {
    visitors: { executor: 'per-vu-iterations', vus: VISITORS, iterations: 1, maxDuration: __ENV.MAX_DURATION || '10m' },
    conductor: { executor: 'per-vu-iterations', vus: 1, iterations: 1, maxDuration: __ENV.MAX_DURATION || '10m', exec: 'conductor' },
  },
  thresholds: {
    'http_req_duration{name:hold}': [p99('HOLD_P99_MS', 50)],
    'http_req_duration{name:status}': [p99('STATUS_P99_MS', 50)],
    'http_req_failed{name:webhook}': ['rate<0.01'],
    // The conductor counts the sell-out once; 0 means it never came.
    sold_out: ['count==1'],
  },
};

export function setup() {
  const sale = __ENV.SALE || createSale({
    name: 'k6-flash',
    units: { count: UNITS },
    stages: [30, 40, 30],
    hold_ttl_seconds: HOLD_TTL,
    admission: { admit_per_second: 200, max_active: 500, admission_ttl_seconds: 60, abandon_after_seconds: 120 },
  });
  return { sale, started: Date.now() };
}

export default function (data) {
  const joined = join(data.sale);
  if (joined.status !== 201 && joined.status !== 200) {
    return;
  }
  const queueToken = joined.json('queue_token');
  let admission = joined.json('admission_token');
  let wait = joined.json('poll_after_ms') || 1000;
  while (!admission) {
    sleep(wait / 1000);
    const res = status(data.sale, queueToken);
    if (res.status !== 200) {
      wait = 1000;
      continue;
    }
    const state = res.json('state');
    if (['sold_out', 'closed', 'expired', 'lost'].includes(state)) {
      return;
    }
    admission = res.json('admission_token');
    wait = res.json('poll_after_ms') || 1000;
  }
  let q = quantity(4);
  for (let attempt = 0; attempt < 8; attempt++) {
    const res = hold(data.sale, admission, q);
    if (res.status === 201) {
      sleep(0.2 + Math.random());
      if (Math.random() < PAY_RATIO) {
        const paid = pay(res.json('id'));
        check(paid, { 'order confirmed': (r) => r.status === 200 });
      }
      return;
    }
    if (res.status !== 409 || res.json('error.code') !== 'insufficient_stock') {
      return;
    }
    q = 1;
    sleep(1);
  }
}

// Opens the stages on schedule and records the sell-out; the visitors stop
// by themselves once the sale says sold_out.
export function conductor(data) {
  let released = 1;
  for (;;) {
    sleep(0.5);
    const t = (Date.now() - data.started) / 1000;
    if (released < 3 && t >= STAGE_INTERVAL * released) {
      adminPost(`/admin/v1/sales/${data.sale}/stages/next`);
      released += 1;
      console.log(`[${t.toFixed(1)}s] stage ${released} released`);
    }
    const res = adminGet(`/admin/v1/sales/${data.sale}`);
    if (res.status === 200 && (res.json('availability.sold') >= UNITS || res.json('state') === 'sold_out')) {
      sellOut.add(t);
      soldOut.add(1);
      console.log(`SOLD OUT after ${t.toFixed(1)} s`);
      return;
    }
  }
}

export function teardown(data) {
  audit(data.sale);
}
