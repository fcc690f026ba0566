// The date-and-time picker of a sale with sessions (SPEC §3 "Sessions") on
// the buyer page (/s/{sale}), shown once the buyer is admitted: a month
// view (a grid: arrow keys move by day and week, Home and End to the
// week's ends, Page Up and Page Down by month; days without a free time
// cannot be chosen) and, for the chosen day, its times as radio buttons
// (paused, closed, cancelled and sold-out times cannot be chosen).
//
// A month is fetched at a time from GET /api/v1/sales/{sale}/sessions with
// a UTC range wide enough for any offset (calendar.js `monthRange`),
// following `next` while a month has more than a page, and sorted into
// days by the local date of each session's `starts_at_local`; the shown
// month is fetched again every 20 seconds (and after a refused hold) so
// the counts stay fresh. The DOM is the `#session-box` of sale.html.

import { api, now, path } from './api.js';
import {
  addMonths, choosable, compareMonths, dayHint, dayLabel, dayLevel, dayMark, daySummary, firstOpenDate, groupByDate,
  inMonth, monthGrid, monthKey, monthLabel, monthOf, monthRange, moveDate, sessionDate, slotStatus, slotStatusText,
  slotText, timeZoneNote, weekdayNames,
} from './calendar.js';
import { $, clear, node, show, text } from './dom.js';

const PAGE = 500;
/** Pages of one month at most (a sale has at most 10,000 sessions). */
const MAX_PAGES = 40;
const REFRESH_MS = 20_000;

/** The first day of the week in the buyer's locale (1 = Monday … 7 = Sunday); Monday when the browser cannot say. */
function localeWeekStart() {
  try {
    const loc = new Intl.Locale(navigator.language || 'en');
    const info = typeof loc.getWeekInfo === 'function' ? loc.getWeekInfo() : loc.weekInfo;
    const first = info && info.firstDay;
    return first >= 1 && first <= 7 ? first : 1;
  } catch {
    return 1;
  }
}

/** One page of the calendar: the API's answer, or throws it. */
async function calendarPage(saleId, params) {
  const q = new URLSearchParams(params).toString();
  const r = await api('GET', path('sales', saleId, 'sessions') + (q ? '?' + q : ''));
  if (r.ok && r.data && Array.isArray(r.data.sessions)) return r.data;
  throw r;
}

/**
 * Session `id` of a sale (for a hold or an order restored from elsewhere,
 * which name the session but not its time), or null. The calendar has no
 * route for one session; its `after` is the previous session's id, so the
 * page after `id - 1` starts with it when the ids are numbers (checked).
 */
export async function findSession(saleId, id) {
  const n = Number(id);
  if (!Number.isInteger(n) || n < 1) return null;
  try {
    const page = await calendarPage(saleId, { after: String(n - 1), limit: '1' });
    const s = page.sessions[0];
    return s && String(s.id) === String(id) ? { ...s, time_zone: page.time_zone } : null;
  } catch {
    return null;
  }
}

/** The parts of a session kept with a hold or an order (localStorage), to show its date and time. */
export function sessionSummary(s, timeZone) {
  if (!s) return null;
  return {
    id: String(s.id), starts_at: s.starts_at, ends_at: s.ends_at, starts_at_local: s.starts_at_local,
    ends_at_local: s.ends_at_local, time_zone: s.time_zone || timeZone || null,
  };
}

/**
 * The picker. `onChange(session|null)` is called when the chosen time
 * changes (or stops being choosable); `announce(words)` speaks through the
 * page's live region.
 */
export function createSessionPicker({ saleId, timeZone, onChange, announce }) {
  const weekStart = localeWeekStart();
  const st = {
    started: false,
    timeZone: timeZone || null,
    month: null, // {year, month} shown
    minMonth: null, // no earlier month has times worth showing
    months: new Map(), // 'YYYY-MM' -> { byDate }
    day: null, // the chosen date
    focusDate: null, // the grid's one tab stop
    chosenId: null,
    load: 0, // the latest load, so an older answer does not overwrite a newer one
    timer: null,
    error: '',
  };

  const grid = $('cal-grid');
  const body = grid.querySelector('tbody');

  // --- data -------------------------------------------------------------------------

  async function fetchMonth(ym) {
    const { from, to } = monthRange(ym);
    const sessions = [];
    let after = null;
    for (let i = 0; i < MAX_PAGES; i++) {
      const params = { from, to, limit: String(PAGE) };
      if (after) params.after = after;
      const page = await calendarPage(saleId, params);
      if (page.time_zone) st.timeZone = page.time_zone;
      sessions.push(...page.sessions);
      if (!page.next) break;
      after = page.next;
    }
    return { byDate: groupByDate(sessions, ym), count: sessions.length };
  }

  function monthData() {
    return st.month ? st.months.get(monthKey(st.month)) : null;
  }

  /** The sessions of a date, from its month's data (loaded or not). */
  function daySessions(date) {
    const m = date ? st.months.get(monthKey(monthOf(date))) : null;
    return (m && m.byDate.get(date)) || [];
  }

  function chosenSession() {
    if (!st.chosenId || !st.day) return null;
    return daySessions(st.day).find((s) => String(s.id) === st.chosenId) || null;
  }

  /**
   * Loads month `ym` (again) and shows it; resolves when shown. The chosen
   * day and time stay chosen while the buyer looks at other months.
   */
  async function showMonth(ym) {
    const load = ++st.load;
    const changing = !st.month || compareMonths(ym, st.month) !== 0;
    st.month = ym;
    if (changing) {
      text($('cal-status'), 'Loading the times of ' + monthLabel(ym) + '…');
      renderHead();
      if (!st.months.has(monthKey(ym))) {
        clear(body);
        body.dataset.month = '';
      }
    }
    let data;
    try {
      data = await fetchMonth(ym);
    } catch (r) {
      if (load !== st.load) return;
      st.error = r && r.status ? 'Could not load the times (the ticket service answered ' + r.status + '). Trying again shortly…'
        : 'Could not reach the ticket service to load the times. Trying again shortly…';
      text($('cal-status'), st.error);
      return;
    }
    if (load !== st.load) return;
    st.error = '';
    st.months.set(monthKey(ym), data);
    render();
  }

  // --- rendering ---------------------------------------------------------------------

  function renderHead() {
    text($('cal-month'), monthLabel(st.month));
    text($('cal-tz'), timeZoneNote(st.timeZone));
    $('cal-prev').disabled = !!(st.minMonth && compareMonths(st.month, st.minMonth) <= 0);
  }

  function buildGrid() {
    clear(body);
    body.dataset.month = monthKey(st.month);
    for (const week of monthGrid(st.month.year, st.month.month, weekStart)) {
      const tr = node('tr');
      for (const cell of week) {
        const td = node('td');
        if (cell) {
          const btn = node('button', 'cal-day');
          btn.type = 'button';
          btn.dataset.date = cell.date;
          btn.tabIndex = -1;
          btn.appendChild(node('span', 'cal-num', cell.day));
          // The mark is drawn from data-mark (CSS ::after): the button's
          // name (aria-label) says it in words, and the visible text, the
          // day's number, is part of that name.
          btn.appendChild(node('span', 'cal-mark'));
          td.appendChild(btn);
        }
        tr.appendChild(td);
      }
      body.appendChild(tr);
    }
  }

  function tabStop() {
    const m = monthData();
    if (st.focusDate && inMonth(st.focusDate, st.month)) return st.focusDate;
    if (st.day && inMonth(st.day, st.month)) return st.day;
    const open = m ? firstOpenDate(m.byDate, st.month) : null;
    return open || monthKey(st.month) + '-01';
  }

  function renderGrid() {
    if (body.dataset.month !== monthKey(st.month)) buildGrid();
    const stop = tabStop();
    st.focusDate = stop;
    for (const btn of body.querySelectorAll('button.cal-day')) {
      const date = btn.dataset.date;
      const list = daySessions(date);
      const sum = daySummary(list);
      const level = dayLevel(list);
      btn.className = 'cal-day level-' + level;
      btn.querySelector('.cal-mark').dataset.mark = dayMark(sum);
      btn.dataset.mark = dayMark(sum);
      btn.setAttribute('aria-label', dayLabel(date) + ': ' + dayHint(sum));
      btn.setAttribute('aria-disabled', sum.open > 0 ? 'false' : 'true');
      btn.setAttribute('aria-pressed', date === st.day ? 'true' : 'false');
      btn.tabIndex = date === stop ? 0 : -1;
    }
  }

  function renderSlots() {
    const field = $('slot-field');
    const here = !!st.day && inMonth(st.day, st.month);
    const list = here ? daySessions(st.day) : [];
    show(field, here);
    if (!here) return;
    text($('slot-legend'), 'Times on ' + dayLabel(st.day));
    const box = $('slot-options');
    const same = box.children.length === list.length && list.every((s, i) => box.children[i].dataset.session === String(s.id));
    if (!same) {
      clear(box);
      for (const s of list) {
        const label = node('label', 'choice slot');
        label.dataset.session = String(s.id);
        const input = node('input');
        input.type = 'radio';
        input.name = 'session';
        input.value = String(s.id);
        input.id = 'slot-' + s.id;
        input.addEventListener('change', () => {
          if (!input.checked) return;
          st.chosenId = String(s.id);
          renderStatus();
          onChange(chosenSession());
        });
        label.appendChild(input);
        label.appendChild(node('span', 'choice-name'));
        label.appendChild(node('span', 'choice-left'));
        box.appendChild(label);
      }
    }
    list.forEach((s, i) => {
      const label = box.children[i];
      const input = label.querySelector('input');
      text(label.querySelector('.choice-name'), slotText(s));
      text(label.querySelector('.choice-left'), slotStatusText(s));
      label.dataset.status = slotStatus(s);
      input.disabled = !choosable(s);
      input.checked = String(s.id) === st.chosenId && !input.disabled;
      label.classList.toggle('unavailable', input.disabled);
    });
  }

  function render() {
    renderHead();
    renderGrid();
    // A chosen time that is no longer choosable (paused, sold out) is let go.
    if (st.chosenId) {
      const s = chosenSession();
      if (!s || !choosable(s)) {
        const was = s ? slotText(s) : '';
        st.chosenId = null;
        onChange(null);
        if (was) announce('The ' + was + ' time is ' + slotStatusText(s) + ' now. Please choose another.');
      }
    }
    renderSlots();
    renderStatus();
  }

  /** The line under the month: days with free times, the chosen day, the chosen time. */
  function renderStatus() {
    const m = monthData();
    let status = '';
    if (m) {
      const days = Array.from(m.byDate.values());
      const open = days.filter((l) => daySummary(l).open > 0).length;
      status = days.length === 0
        ? 'No times in ' + monthLabel(st.month) + '.'
        : open + (open === 1 ? ' day' : ' days') + ' with free times in ' + monthLabel(st.month) + '.';
      if (st.day && inMonth(st.day, st.month)) status += ' ' + dayLabel(st.day) + ': ' + dayHint(daySummary(daySessions(st.day))) + '.';
    }
    const chosen = chosenSession();
    if (chosen) status += ' Chosen: ' + dayLabel(st.day) + ', ' + slotText(chosen) + '.';
    text($('cal-status'), status);
    document.body.dataset.calendar = m ? monthKey(st.month) : '';
  }

  // --- interaction --------------------------------------------------------------------

  function focusDate(date) {
    st.focusDate = date;
    const btn = body.querySelector('button[data-date="' + date + '"]');
    if (!btn) return;
    for (const b of body.querySelectorAll('button.cal-day')) b.tabIndex = b === btn ? 0 : -1;
    btn.focus();
  }

  async function goToMonth(ym, focus) {
    await showMonth(ym);
    if (focus) focusDate(focus);
    announce(monthLabel(ym) + '. ' + $('cal-status').textContent);
  }

  function chooseDay(date) {
    const list = daySessions(date);
    const sum = daySummary(list);
    st.focusDate = date;
    if (!sum.open) {
      announce(dayLabel(date) + ': ' + (sum.slots ? 'no free times.' : 'no times.'));
      renderGrid();
      return;
    }
    if (st.day !== date) {
      st.day = date;
      if (st.chosenId) {
        st.chosenId = null;
        onChange(null);
      }
    }
    render();
    announce(dayLabel(date) + ' chosen: ' + dayHint(sum) + '. Choose a time below.');
  }

  body.addEventListener('click', (e) => {
    const btn = e.target.closest('button.cal-day');
    if (btn) chooseDay(btn.dataset.date);
  });
  body.addEventListener('keydown', (e) => {
    const btn = e.target.closest('button.cal-day');
    if (!btn || e.altKey || e.ctrlKey || e.metaKey) return;
    const to = moveDate(btn.dataset.date, e.key, weekStart);
    if (!to) return;
    e.preventDefault();
    if (inMonth(to, st.month)) return focusDate(to);
    const ym = monthOf(to);
    if (st.minMonth && compareMonths(ym, st.minMonth) < 0) return;
    goToMonth(ym, to);
  });
  $('cal-prev').addEventListener('click', () => goToMonth(addMonths(st.month, -1)));
  $('cal-next').addEventListener('click', () => goToMonth(addMonths(st.month, 1)));

  // --- life -------------------------------------------------------------------------

  function tickRefresh() {
    if (!st.started || document.hidden || !st.month) return;
    showMonth(st.month);
  }

  return {
    /** Shows the picker at the month of the next session (of the first, when all are past). */
    async start() {
      show($('session-box'), true);
      if (st.started) return;
      st.started = true;
      st.timer = setInterval(tickRefresh, REFRESH_MS);
      // Again after a stop (the buy view left and shown again): the same month, fresh.
      if (st.month) return showMonth(st.month);
      const head = weekdayNames(weekStart);
      const ths = grid.querySelectorAll('thead th');
      head.forEach((n, i) => {
        if (!ths[i]) return;
        text(ths[i], n.short);
        ths[i].setAttribute('abbr', n.long);
      });
      let first = null;
      try {
        const upcoming = await calendarPage(saleId, { from: new Date(now()).toISOString(), limit: '1' });
        if (upcoming.time_zone) st.timeZone = upcoming.time_zone;
        first = upcoming.sessions[0] || null;
        if (!first) first = (await calendarPage(saleId, { limit: '1' })).sessions[0] || null;
      } catch {
        first = null;
      }
      const ym = first && sessionDate(first) ? monthOf(sessionDate(first)) : monthOf(new Date(now()).toISOString().slice(0, 10));
      st.minMonth = ym;
      await showMonth(ym);
    },
    stop() {
      if (st.timer) clearInterval(st.timer);
      st.timer = null;
      st.started = false;
    },
    /** Fetches the shown month again (after a refused hold, say). */
    refresh() {
      if (st.month) return showMonth(st.month);
      return Promise.resolve();
    },
    /** The chosen session, or null. */
    chosen: chosenSession,
    timeZone: () => st.timeZone,
    /** Moves focus to where the buyer chooses: the chosen day's times, else the month's tab stop. */
    focus() {
      const radio = st.day && $('slot-options').querySelector('input:not(:disabled)');
      if (radio) return radio.focus();
      focusDate(tabStop());
    },
  };
}
