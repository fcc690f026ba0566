// Creating a sale from the console: the form (with its optional prices: a
// currency and a list of categories, each covering all units, stages,
// sections or unit ranges), its confirmation, and the API's validation
// message (422) shown next to the form, with the field it names marked
// invalid where the message says which.

import { currencyDigits, fmtNumber } from './format.js';
import { $, busy, node, show, text } from './dom.js';
import { adminApi } from './admin-api.js';
import { pricesSummary, saleBody, sessionsSummary } from './admin-format.js';
import { confirmStep } from './admin-confirm.js';
import { errorWords, say } from './admin-sale.js';

/** Form field names by the API's names for them (as its messages say them). */
const FIELDS = {
  name: 'c-name', mode: 'c-mode', units: 'c-units', count: 'c-units', stages: 'c-stages', starts_at: 'c-starts',
  per_user_limit: 'c-limit', hold_ttl_seconds: 'c-hold-ttl', admit_per_second: 'c-aps', max_active: 'c-max-active',
  admission_ttl_seconds: 'c-adm-ttl', abandon_after_seconds: 'c-abandon', difficulty_bits: 'c-pow',
  seating: 'c-seating', sections: 'c-sections', rows: 'c-sections', seats_per_row: 'c-sections', currency: 'c-currency',
  // sessions.time_zone, sessions.recurrence.*
  time_zone: 'c-tz', from: 'c-s-from', to: 'c-s-to', start: 'c-s-start', end: 'c-s-end', every_minutes: 'c-s-every',
  duration_minutes: 'c-s-length', except: 'c-s-except', weekdays: 'c-s-wd-1',
};

// --- price categories ----------------------------------------------------------------

/** What a category can cover, and what its list field is called then. */
const COVERS = [
  ['all', 'All units', null, null],
  ['stages', 'Stages', 'Stages', 'e.g. 2, 3'],
  ['sections', 'Sections', 'Sections', 'e.g. A, B'],
  ['units', 'Unit ranges', 'Unit ranges', 'e.g. 1-100, 201-300'],
];

let rowIds = 0;

function categoryRows() {
  return Array.from($('c-categories').querySelectorAll('.price-row'));
}

/** A labelled field of a category row; the visible label is short, the accessible name says which category. */
function rowField(row, key, labelText, control, hintText) {
  const id = 'p-' + key + '-' + row.dataset.id;
  const field = node('div', 'field');
  field.dataset.key = key;
  const label = node('label');
  label.htmlFor = id;
  label.appendChild(node('span', 'visually-hidden row-prefix'));
  label.appendChild(node('span', 'row-label', labelText));
  control.id = id;
  control.dataset.key = key;
  field.appendChild(label);
  field.appendChild(control);
  if (hintText != null) {
    const hint = node('p', 'hint', hintText);
    hint.id = id + '-hint';
    control.setAttribute('aria-describedby', hint.id);
    field.appendChild(hint);
  }
  control.addEventListener('input', () => control.removeAttribute('aria-invalid'));
  return field;
}

/** Numbers the rows again ("Category 2 price"), after one is added or removed. */
function renumber() {
  const rows = categoryRows();
  const currency = $('c-currency').value.trim().toUpperCase();
  const digits = currencyDigits(currency);
  rows.forEach((row, i) => {
    text(row.querySelector('legend'), 'Price category ' + (i + 1));
    for (const prefix of row.querySelectorAll('.row-prefix')) text(prefix, 'Category ' + (i + 1) + ' ');
    text(row.querySelector('.remove-category'), 'Remove');
    row.querySelector('.remove-category').setAttribute('aria-label', 'Remove price category ' + (i + 1));
    text(row.querySelector('[data-key="amount"] .hint'), digits == null
      ? 'In the currency’s main unit, e.g. 45.00'
      : 'In ' + currency + (digits ? ', e.g. 45.' + '0'.repeat(digits) : ', e.g. 6800'));
  });
}

/** Shows the list field a category's "covers" choice needs, named after it. */
function coversChanged(row) {
  const covers = row.querySelector('select[data-key="covers"]').value;
  const spec = COVERS.find(([v]) => v === covers) || COVERS[0];
  const listField = row.querySelector('.field[data-key="list"]');
  show(listField, !!spec[2]);
  if (spec[2]) {
    text(listField.querySelector('.row-label'), spec[2]);
    text(listField.querySelector('.hint'), spec[3]);
  }
}

function addCategoryRow(focus) {
  const row = node('fieldset', 'price-row');
  row.dataset.id = String(++rowIds);
  row.appendChild(node('legend'));
  const name = node('input');
  name.type = 'text';
  name.autocomplete = 'off';
  name.maxLength = 32;
  const amount = node('input');
  amount.type = 'text';
  amount.inputMode = 'decimal';
  amount.autocomplete = 'off';
  const covers = node('select');
  for (const [value, label] of COVERS) {
    const opt = node('option', null, label);
    opt.value = value;
    covers.appendChild(opt);
  }
  const list = node('input');
  list.type = 'text';
  list.autocomplete = 'off';
  list.spellcheck = false;
  row.appendChild(rowField(row, 'name', 'Name', name));
  row.appendChild(rowField(row, 'amount', 'Price', amount, ''));
  row.appendChild(rowField(row, 'covers', 'Covers', covers));
  row.appendChild(rowField(row, 'list', 'Stages', list, ''));
  const remove = node('button', 'secondary small-btn remove-category');
  remove.type = 'button';
  remove.addEventListener('click', () => {
    const rows = categoryRows();
    const at = rows.indexOf(row);
    row.remove();
    if (!categoryRows().length) addCategoryRow(false);
    renumber();
    const left = categoryRows();
    (left[Math.min(at, left.length - 1)] || $('c-add-category')).querySelector('input')?.focus();
  });
  row.appendChild(remove);
  covers.addEventListener('change', () => coversChanged(row));
  $('c-categories').appendChild(row);
  coversChanged(row);
  renumber();
  if (focus) name.focus();
  return row;
}

/** The categories as typed: [{name, amount, covers, list}], one per row. */
function categoryValues() {
  return categoryRows().map((row) => {
    const v = (key) => row.querySelector('[data-key="' + key + '"]:not(.field)').value;
    return { name: v('name'), amount: v('amount'), covers: v('covers'), list: v('list') };
  });
}

// --- validation messages -------------------------------------------------------------

/** Every control the form may mark invalid. */
function markable() {
  return Object.values(FIELDS).map((id) => $(id)).concat(Array.from($('c-categories').querySelectorAll('input, select')));
}

function clearInvalid() {
  for (const el of markable()) el.removeAttribute('aria-invalid');
}

function mark(el) {
  if (!el) return;
  el.setAttribute('aria-invalid', 'true');
  el.focus();
}

/**
 * Marks the price field a message names: "prices.currency …",
 * "prices.categories[1].stages: …" (index of the categories sent, `rows`
 * maps it to the form's row). True when the message was about prices.
 */
function markPriceField(message, rows) {
  const m = /prices\.(currency|categories)(?:\[(\d+)\](?:\.(\w+))?)?/.exec(message || '');
  if (!m) return false;
  if (m[1] === 'currency') {
    mark($('c-currency'));
    return true;
  }
  const all = categoryRows();
  if (m[2] == null) {
    // About the categories together (a unit without a price, or in two):
    // the first category's "covers" is where to start.
    if (all.length) all[0].querySelector('select[data-key="covers"]').focus();
    return true;
  }
  const row = all[(rows && rows[Number(m[2])]) ?? Number(m[2])];
  if (!row) return true;
  const key = { name: 'name', amount: 'amount', stages: 'list', sections: 'list', units: 'list' }[m[3]] || 'covers';
  mark(row.querySelector('[data-key="' + key + '"]:not(.field)'));
  return true;
}

/** Marks the field a message names ("admission.max_active must be …"). */
function markField(message, rows) {
  if (markPriceField(message, rows)) return;
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
  f.prices = { currency: $('c-currency').value, categories: categoryValues() };
  f.sessions = {
    time_zone: $('c-tz').value, from: $('c-s-from').value, to: $('c-s-to').value, start: $('c-s-start').value,
    end: $('c-s-end').value, every: $('c-s-every').value, length: $('c-s-length').value, except: $('c-s-except').value,
    weekdays: Array.from($('c-s-weekdays').querySelectorAll('input:checked'), (i) => Number(i.value)),
    scope: $('c-s-scope').value, no_overlap: $('c-s-no-overlap').checked,
  };
  return f;
}

function seatingChanged() {
  const reserved = $('c-seating').value === 'reserved';
  show($('c-units-field'), !reserved);
  show($('c-sections-field'), reserved);
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
  $('c-seating').addEventListener('change', seatingChanged);
  $('c-currency').addEventListener('input', (e) => { e.target.removeAttribute('aria-invalid'); renumber(); });
  $('c-add-category').addEventListener('click', () => addCategoryRow(true));
  addCategoryRow(false);
  seatingChanged();
  $('create-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const err = $('create-error');
    text(err, '');
    clearInvalid();
    const parsed = saleBody(formValues(e.currentTarget));
    if (parsed.error) {
      text(err, parsed.error);
      markField(parsed.field, parsed.rows);
      return;
    }
    const b = parsed.body;
    const rows = parsed.rows;
    const units = b.units.sections
      ? fmtNumber(b.units.sections.reduce((a, x) => a + x.rows * x.seats_per_row, 0)) + ' reserved seats in ' +
        b.units.sections.length + (b.units.sections.length === 1 ? ' section' : ' sections')
      : fmtNumber(b.units.count) + (b.sessions ? ' units per session' : ' units');
    const ok = await confirmStep({
      title: 'Create “' + b.name + '”?',
      body: (b.mode === 'lottery' ? 'A lottery' : 'A first-come sale') + ' of ' + units +
        (b.stages ? ' in stages ' + b.stages.join('/') + ' %' : '') + ', ' +
        (b.starts_at ? 'starting ' + b.starts_at : 'on sale now') + '. ' +
        (b.prices ? 'Prices in ' + b.prices.currency + ': ' + pricesSummary(b.prices) + '. ' : 'No prices. ') +
        (b.sessions ? 'Sessions: ' + sessionsSummary(b.sessions) + '. ' : '') +
        'Its units are written to the database at once.',
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
    if (r.status === 422 || r.status === 400) markField(r.data && r.data.error && r.data.error.message, rows);
  });
}

