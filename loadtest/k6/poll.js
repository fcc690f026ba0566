// poll.js — N waiting visitors polling their place (queue/status).
//   k6 run -e BASE=http://127.0.0.1:18080 -e VISITORS=5000 loadtest/k6/poll.js
// Knobs: VISITORS (2000, joined in setup), VUS (64), DURATION (20s),
// STATUS_P99_MS (20); PACE=1 makes each poll wait poll_after_ms as a browser
// would; by default the VUs poll back to back (a throughput test).
import { check, fail, sleep } from 'k6';
import { createSale, join, p99, status } from './lib.js';

const VISITORS = Number(__ENV.VISITORS || 2000);

export const options = {
  setupTimeout: '300s',
  scenarios: {
    poll: { executor: 'constant-vus', vus: Number(__ENV.VUS || 64), duration: __ENV.DURATION || '20s' },
  },
  thresholds: {
    'http_req_failed{name:status}': ['rate<0.01'],
    // SPEC §8 names no latency for polls; 20 ms keeps them as fast as a join.
    'http_req_duration{name:status}': [p99('STATUS_P99_MS', 20)],
    checks: ['rate>0.99'],
  },
};

export function setup() {
  const sale = __ENV.SALE || createSale({ name: 'k6-poll', admission: { admit_per_second: 0, max_active: 5000, admission_ttl_seconds: 300, abandon_after_seconds: 3600 } });
  const tokens = [];
  for (let i = 0; i < VISITORS; i++) {
    const res = join(sale);
    if (res.status === 201) {
      tokens.push(res.json('queue_token'));
    }
  }
  if (tokens.length === 0) {
    fail(`no visitor could join sale ${sale}`);
  }
  return { sale, tokens };
}

export default function (data) {
  const token = data.tokens[(__VU * 7919 + __ITER) % data.tokens.length];
  const res = status(data.sale, token);
  check(res, { 'waiting (200)': (r) => r.status === 200 && r.json('state') === 'waiting' });
  if (__ENV.PACE === '1' && res.status === 200) {
    sleep(res.json('poll_after_ms') / 1000);
  }
}
