// Dead-lettered webhook deliveries (every try failed): the list, and a
// replay of one event's deliveries with fresh tries, behind a confirmation.

import { path } from './api.js';
import { fmtDate, fmtNumber } from './format.js';
import { $, busy, clear, node, show, text } from './dom.js';
import { adminApi } from './admin-api.js';
import { confirmStep } from './admin-confirm.js';
import { errorWords } from './admin-sale.js';

let ctxRef = null;

/** Loads and shows the dead letters. */
export async function loadDead() {
  const status = $('dead-status');
  let r;
  try {
    r = await adminApi('GET', '/events/dead?limit=50');
  } catch {
    text(status, 'Could not reach the server.');
    return;
  }
  if (r.status === 401) return ctxRef && ctxRef.unauthorized(r);
  if (!r.ok || !Array.isArray(r.data)) {
    text(status, errorWords(r));
    return;
  }
  render(r.data);
}

function render(rows) {
  const table = $('dead-table');
  const body = table.querySelector('tbody');
  clear(body);
  text($('dead-status'), rows.length
    ? fmtNumber(rows.length) + ' delivery(ies) gave up after every try. Replaying puts one back in line with fresh tries.'
    : 'None: every webhook was delivered or is still being tried.');
  show(table, rows.length > 0);
  for (const d of rows) {
    const tr = node('tr');
    const ev = node('td');
    ev.appendChild(node('span', null, d.event_type));
    ev.appendChild(node('br'));
    ev.appendChild(node('code', 'small', d.event_id));
    ev.appendChild(node('span', 'small muted', ' ' + fmtDate(d.created_at)));
    tr.appendChild(ev);
    tr.appendChild(node('td', null, d.sale_id || '–'));
    tr.appendChild(node('td', null, d.endpoint));
    tr.appendChild(node('td', null, fmtNumber(d.attempts)));
    tr.appendChild(node('td', 'small', (d.last_status ? 'HTTP ' + d.last_status + ' ' : '') + (d.last_error || '')));
    const td = node('td');
    const btn = node('button', 'secondary small-btn', 'Replay…');
    btn.type = 'button';
    btn.setAttribute('aria-label', 'Replay ' + d.event_type + ' ' + d.event_id);
    btn.addEventListener('click', () => replay(d, btn));
    td.appendChild(btn);
    tr.appendChild(td);
    body.appendChild(tr);
  }
}

async function replay(d, btn) {
  const ok = await confirmStep({
    title: 'Replay ' + d.event_type + '?',
    body: 'Event ' + d.event_id + ' is delivered to ' + d.endpoint + ' again, with fresh tries. Receivers de-duplicate by event id.',
    confirmLabel: 'Replay',
  });
  if (!ok) return;
  busy(btn, true);
  let r;
  try {
    r = await adminApi('POST', path('events', d.event_id, 'replay'));
  } catch {
    busy(btn, false);
    text($('dead-status'), 'Could not reach the server.');
    return;
  }
  busy(btn, false);
  if (r.status === 401) return ctxRef && ctxRef.unauthorized(r);
  text($('dead-status'), r.ok ? 'Replayed: ' + fmtNumber(r.data.replayed) + ' delivery(ies) back in line.' : errorWords(r));
  if (r.ok) setTimeout(loadDead, 1000);
}

export function wireDead(ctx) {
  ctxRef = ctx;
  $('dead-refresh').addEventListener('click', loadDead);
}
