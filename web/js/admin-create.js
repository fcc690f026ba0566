// Creating a sale from the console: the form, its confirmation, and the
// API's validation message (422) shown next to the form, with the field it
// names marked invalid where the message says which.

import { fmtNumber } from './format.js';
import { $, busy, show, text } from './dom.js';
import { adminApi } from './admin-api.js';
import { saleBody } from './admin-format.js';
import { confirmStep } from './admin-confirm.js';
import { errorWords, say } from './admin-sale.js';

/** Form field names by the API's names for them (as its messages say them). */
const FIELDS = {
  name: 'c-name', mode: 'c-mode', units: 'c-units', count: 'c-units', stages: 'c-stages', starts_at: 'c-starts',
  per_user_limit: 'c-limit', hold_ttl_seconds: 'c-hold-ttl', admit_per_second: 'c-aps', max_active: 'c-max-active',
  admission_ttl_seconds: 'c-adm-ttl', abandon_after_seconds: 'c-abandon', difficulty_bits: 'c-pow',
};

function clearInvalid() {
  for (const id of Object.values(FIELDS)) $(id).removeAttribute('aria-invalid');
}

/** Marks the field a message names ("admission.max_active must be …"). */
function markField(message) {
  const m = /([a-z_]+(?:\.[a-z_]+)*)/.exec(message || '');
  if (!m) return;
  const name = m[1].split('.').pop();
  const id = FIELDS[name];
  if (!id) return;
  $(id).setAttribute('aria-invalid', 'true');
  $(id).focus();
}

function formValues(form) {
  const f = Object.fromEntries(new FormData(form).entries());
  f.shuffle_prequeue = $('c-shuffle').checked;
  return f;
}

function setOpen(open) {
  show($('create-card'), open);
  $('new-sale-btn').setAttribute('aria-expanded', String(open));
  if (open) {
    text($('create-error'), '');
    clearInvalid();
    $('c-name').focus();
  }
}

/** Wires the form; `onCreated(sale)` selects the new sale. `ctx.unauthorized(r)` signs out. */
export function wireCreate(ctx) {
  $('new-sale-btn').addEventListener('click', () => setOpen($('create-card').hidden));
  $('create-cancel').addEventListener('click', () => { setOpen(false); $('new-sale-btn').focus(); });
  $('create-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const err = $('create-error');
    text(err, '');
    clearInvalid();
    const parsed = saleBody(formValues(e.currentTarget));
    if (parsed.error) {
      text(err, parsed.error);
      markField(parsed.field);
      return;
    }
    const b = parsed.body;
    const ok = await confirmStep({
      title: 'Create “' + b.name + '”?',
      body: (b.mode === 'lottery' ? 'A lottery' : 'A first-come sale') + ' of ' + fmtNumber(b.units.count) + ' units' +
        (b.stages ? ' in stages ' + b.stages.join('/') + ' %' : '') + ', ' +
        (b.starts_at ? 'starting ' + b.starts_at : 'on sale now') + '. Its units are written to the database at once.',
      confirmLabel: 'Create sale',
    });
    if (!ok) return;
    const btn = $('create-btn');
    busy(btn, true);
    let r;
    try {
      r = await adminApi('POST', '/sales', { body: b });
    } catch {
      busy(btn, false);
      text(err, 'Could not reach the server. The sale may or may not exist; check the list before trying again.');
      return;
    }
    busy(btn, false);
    if (r.status === 401) return ctx.unauthorized(r);
    if (r.status === 201 && r.data) {
      setOpen(false);
      say('Created “' + r.data.name + '” (' + r.data.state.replace(/_/g, ' ') + ').', 'ok');
      ctx.onCreated(r.data);
      return;
    }
    text(err, errorWords(r));
    if (r.status === 422) markField(r.data && r.data.error && r.data.error.message);
  });
}

