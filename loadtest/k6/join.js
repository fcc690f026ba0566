// join.js — queue joins: every iteration is a new anonymous visitor.
//   k6 run -e BASE=http://127.0.0.1:18080 loadtest/k6/join.js
// Knobs: VUS (64), DURATION (20s), JOIN_P99_MS (20); see lib.js for the rest.
import { check } from 'k6';
import { createSale, join, p99 } from './lib.js';

export const options = {
  scenarios: {
    join: { executor: 'constant-vus', vus: Number(__ENV.VUS || 64), duration: __ENV.DURATION || '20s' },
  },
  thresholds: {
    'http_req_failed{name:join}': ['rate<0.01'],
    // SPEC §8: join p99 < 20 ms.
    'http_req_duration{name:join}': [p99('JOIN_P99_MS', 20)],
    checks: ['rate>0.99'],
  },
};

export function setup() {
  // Nobody is admitted: everyone stays waiting.
  return { sale: __ENV.SALE || createSale({ name: 'k6-join', admission: { admit_per_second: 0, max_active: 5000, admission_ttl_seconds: 300, abandon_after_seconds: 3600 } }) };
}

export default function (data) {
  const res = join(data.sale);
  check(res, { 'joined (201)': (r) => r.status === 201 });
}
