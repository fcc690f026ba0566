// flash.js — a whole flash sale: VISITORS arrive in a burst, poll at the pace
// the server asks (poll_after_ms), are admitted, hold 1–4 units, pay (90 %)
// or walk away; stages 30/40/30 open every STAGE_INTERVAL seconds; the run
// ends at sold-out and prints the time to sell-out and the audit.
//   k6 run -e BASE=http://127.0.0.1:18080 -e VISITORS=2000 -e UNITS=2000 loadtest/k6/flash.js
// (k6 runs one VU per visitor: for 200,000 visitors use the fgdrive driver.)
import { check, sleep } from 'k6';
import exec from 'k6/execution';
import { Trend } from 'k6/metrics';
import { adminGet, adminPost, audit, createSale, hold, join, pay, quantity, status } from './lib.js';

const VISITORS = Number(__ENV.VISITORS || 2000);
const UNITS = Number(__ENV.UNITS || 2000);
const STAGE_INTERVAL = Number(__ENV.STAGE_INTERVAL || 10);
const PAY_RATIO = Number(__ENV.PAY_RATIO || 0.9);
const sellOut = new Trend('time_to_sell_out_s');

export const options = {
  scenarios: {
    visitors: { executor: 'per-vu-iterations', vus: VISITORS, iterations: 1, maxDuration: __ENV.MAX_DURATION || '10m' },
    conductor: { executor: 'per-vu-iterations', vus: 1, iterations: 1, maxDuration: __ENV.MAX_DURATION || '10m', exec: 'conductor' },
  },
  thresholds: {
    'http_req_duration{name:hold}': ['p(99)<50'],
    'http_req_duration{name:status}': ['p(99)<50'],
    'http_req_failed{name:webhook}': ['rate<0.01'],
    time_to_sell_out_s: ['count==1'],
  },
};

export function setup() {
  const sale = __ENV.SALE || createSale({
    name: 'k6-flash',
    units: { count: UNITS },
    stages: [30, 40, 30],
    hold_ttl_seconds: 20,
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

// Opens the stages on schedule and ends the test at sold-out.
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
      console.log(`SOLD OUT after ${t.toFixed(1)} s`);
      exec.test.abort('sold out');
    }
  }
}

export function teardown(data) {
  audit(data.sale);
}
