// hold.js — admitted buyers: join a sale without waiting room (admitted at
// once), hold 1–4 units, pay through the signed webhook; audit at the end.
//   k6 run -e BASE=http://127.0.0.1:18080 loadtest/k6/hold.js
// Knobs: VUS (16), DURATION (20s), UNITS (200000), HOLD_P99_MS (50); see lib.js.
import { check } from 'k6';
import { audit, createSale, hold, join, p99, pay, quantity } from './lib.js';

export const options = {
  scenarios: {
    buyers: { executor: 'constant-vus', vus: Number(__ENV.VUS || 16), duration: __ENV.DURATION || '20s' },
  },
  thresholds: {
    // SPEC §8: hold p99 < 50 ms at the admitted rate.
    'http_req_duration{name:hold}': [p99('HOLD_P99_MS', 50)],
    'http_req_failed{name:webhook}': ['rate<0.01'],
    checks: ['rate>0.95'],
  },
};

export function setup() {
  return { sale: __ENV.SALE || createSale({ name: 'k6-hold', waiting_room: false, units: { count: Number(__ENV.UNITS || 200000) } }) };
}

export default function (data) {
  const joined = join(data.sale);
  const admission = joined.status === 201 ? joined.json('admission_token') : null;
  if (!check(admission, { 'admitted at once': (t) => !!t })) {
    return;
  }
  const res = hold(data.sale, admission, quantity(4));
  if (res.status !== 201) {
    return;
  }
  const paid = pay(res.json('id'));
  check(paid, { 'order confirmed': (r) => r.status === 200 && r.json('order.state') === 'confirmed' });
}

export function teardown(data) {
  audit(data.sale);
}
