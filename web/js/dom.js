// The few DOM helpers the pages share. Text is always set with textContent,
// never as HTML.

import { stateLabel } from './format.js';

export function $(id) {
  return document.getElementById(id);
}

export function show(el, on) {
  if (el) el.hidden = !on;
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
}

export function text(el, value) {
  if (el) el.textContent = value == null ? '' : String(value);
}

/** A new element with an optional class and text. */
export function node(tag, cls, content) {
  const el = document.createElement(tag);
  if (cls) el.className = cls;
  if (content != null) el.textContent = String(content);
  return el;
}

/** Disables a button while its request runs, and says so to assistive tech. */
export function busy(button, on) {
  button.disabled = on;
  button.setAttribute('aria-busy', on ? 'true' : 'false');
}

/** The sale's state as a badge. */
export function badge(state, mode) {
  return node('span', 'badge ' + state, stateLabel(state, mode));
}
