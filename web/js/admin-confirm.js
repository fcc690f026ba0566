// The confirmation step every admin control goes through: a modal
// <dialog> (focus moves into it and returns after; Escape cancels) that
// says exactly what will happen. Resolves to true only on "Confirm".

import { $, text } from './dom.js';

let pending = null;

/** Asks; resolves true when confirmed, false when cancelled. */
export function confirmStep({ title, body, confirmLabel = 'Confirm', danger = false }) {
  const dialog = $('confirm');
  if (pending) pending(false);
  text($('confirm-title'), title);
  text($('confirm-text'), body);
  const ok = $('confirm-ok');
  text(ok, confirmLabel);
  ok.classList.toggle('danger', danger);
  dialog.returnValue = '';
  return new Promise((resolve) => {
    pending = resolve;
    dialog.addEventListener('close', () => {
      pending = null;
      resolve(dialog.returnValue === 'ok');
    }, { once: true });
    dialog.showModal();
    // Start on Cancel for what cannot be undone.
    (danger ? $('confirm-cancel') : ok).focus();
  });
}
