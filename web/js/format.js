// Pure formatting for the buyer pages: numbers, durations, waits, dates,
// labels, money (amounts in minor units, SPEC §3 "Prices") and the plain
// words for API errors. No DOM, no network, no clock except where a
// function takes one: everything here runs under `node --test`
// (format.test.mjs; the money part in money.test.mjs).

/** "1 ticket", "2 tickets". */
export function plural(n, one, many) {
  return n + ' ' + (n === 1 ? one : many);
}

/** A number with the locale's grouping: 12,345. */
export function fmtNumber(n, locale) {
  try {
    return Number(n).toLocaleString(locale);
  } catch {
    return String(n);
  }
}

/** Seconds as m:ss, or h:mm:ss from an hour on. */
export function fmtClock(totalSeconds) {
  const s = Math.max(0, Math.floor(totalSeconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  const mm = h ? String(m).padStart(2, '0') : String(m);
  return (h ? h + ':' : '') + mm + ':' + String(sec).padStart(2, '0');
}

/** Days when two or more, else the clock. */
export function fmtLongDuration(totalSeconds) {
  const s = Math.max(0, Math.round(totalSeconds));
  const d = Math.floor(s / 86400);
  if (d >= 2) return plural(d, 'day', 'days');
  return fmtClock(s);
}

/** What a countdown shows with `leftSeconds` to go (rounded up, never below 0:00). */
export function fmtCountdown(leftSeconds) {
  return leftSeconds > 86400 ? fmtLongDuration(leftSeconds) : fmtClock(Math.ceil(Math.max(0, leftSeconds)));
}

/** An estimated wait in words; null means the server does not know yet. */
export function fmtWait(seconds) {
  if (seconds == null) return 'estimating…';
  if (seconds <= 5) return 'any moment now';
  if (seconds < 60) return 'under a minute';
  const minutes = Math.round(seconds / 60);
  if (minutes < 60) return 'about ' + plural(minutes, 'minute', 'minutes');
  const h = Math.floor(minutes / 60);
  const m = minutes % 60;
  return 'about ' + plural(h, 'hour', 'hours') + (m ? ' ' + plural(m, 'minute', 'minutes') : '');
}

/** An RFC 3339 time as a short local date and time; '' when unreadable. */
export function fmtDate(iso, locale, timeZone) {
  const d = new Date(iso);
  if (iso == null || isNaN(d.getTime())) return '';
  const opts = { weekday: 'short', day: 'numeric', month: 'short', hour: '2-digit', minute: '2-digit' };
  if (timeZone) opts.timeZone = timeZone;
  try {
    return d.toLocaleString(locale, opts);
  } catch {
    return d.toString();
  }
}

/** A sale state as the buyer reads it. */
export function stateLabel(state, mode) {
  if (state === 'scheduled' && mode === 'lottery') return 'Entries open';
  const labels = { scheduled: 'Opens soon', on_sale: 'On sale', paused: 'Paused', sold_out: 'Sold out', closed: 'Closed' };
  return labels[state] || state;
}

/** "Lottery", "Reserved seating": what kind of sale this is, if not the plain kind. */
export function saleKinds(sale) {
  const kinds = [];
  if (sale.mode === 'lottery') kinds.push('Lottery');
  if (sale.seating === 'reserved') kinds.push('Reserved seating');
  return kinds;
}

/** "1,200 of 2,000 available · 500 released later"; '' without availability. */
export function availabilityText(sale, locale) {
  const a = sale && sale.availability;
  if (!a) return '';
  const parts = [fmtNumber(a.available, locale) + ' of ' + fmtNumber(a.total, locale) + ' available'];
  if (a.unreleased > 0) parts.push(fmtNumber(a.unreleased, locale) + ' released later');
  return parts.join(' · ');
}

/** The line under a sale's name on its page (after the state badge). */
export function saleMetaText(sale, locale) {
  const bits = saleKinds(sale);
  const price = priceFromText(sale, locale);
  if (price) bits.push(price.charAt(0).toUpperCase() + price.slice(1));
  if (sale.session_count > 0) bits.push(fmtNumber(sale.session_count, locale) + (sale.session_count === 1 ? ' time slot' : ' time slots'));
  const av = availabilityText(sale, locale);
  if (av) bits.push(av);
  if (sale.per_user_limit) bits.push('up to ' + sale.per_user_limit + ' per person');
  return bits.join(' · ');
}

/** The small print of a sale in the list: opening time, line length, wait. */
export function saleListExtras(sale, locale, timeZone) {
  const extra = [];
  if (sale.state === 'scheduled' && sale.starts_at) {
    extra.push((sale.mode === 'lottery' ? 'Entries close ' : 'Opens ') + fmtDate(sale.starts_at, locale, timeZone));
  }
  if (sale.queue && sale.queue.length > 0) {
    extra.push(plural(sale.queue.length, 'person', 'people') + ' in line');
    if (sale.estimated_wait_seconds != null) extra.push('wait ' + fmtWait(sale.estimated_wait_seconds));
  }
  return extra.join(' · ');
}

/** Percentage of a sale still available, 0..100, for the bar in the list. */
export function availablePercent(availability) {
  if (!availability || !(availability.total > 0)) return 0;
  return Math.round((100 * availability.available) / availability.total);
}

/**
 * Plain words for an API error. `error` is the `{code, message}` of the
 * error body (see api.js errorOf), `status` the HTTP status, `ctx.limit` the
 * sale's per-person limit when known, `ctx.category` the price category asked for.
 */
export function plainError(error, status, ctx) {
  const code = (error && error.code) || 'http_' + (status || 0);
  const message = (error && error.message) || '';
  const limit = ctx && ctx.limit;
  switch (code) {
    case 'sold_out': return 'Sorry, this sale is sold out.';
    case 'sale_closed': return 'This sale has closed.';
    case 'limit_exceeded':
      return 'You have reached the limit' + (limit ? ' of ' + plural(limit, 'ticket', 'tickets') : '') +
        ' per person for this sale.';
    case 'insufficient_stock':
      if (ctx && ctx.session) {
        return 'There aren’t that many ' + (ctx.category ? ctx.category + ' ' : '') +
          'tickets left at this time. Try a smaller number or another time.';
      }
      return ctx && ctx.category
        ? 'There aren’t that many ' + ctx.category + ' tickets left. Try a smaller number or another category.'
        : 'There aren’t that many tickets left. Try a smaller number.';
    case 'session_paused': return 'Sales for this time are paused for a moment. Choose another time, or try again shortly.';
    case 'session_closed': return 'This time is no longer on sale. Please choose another time.';
    case 'session_overlap':
      return 'You already hold or have tickets for a time that overlaps this one, and this sale does not allow both. Choose a time that doesn’t overlap.';
    case 'hold_expired': return 'Your hold has expired, and the tickets went back on sale.';
    case 'sale_paused': return 'The sale is paused for a moment. Please try again shortly.';
    case 'seat_taken':
      return 'Some of those seats were just taken. Please choose others.' + (message ? ' (' + message + ')' : '');
    case 'seat_not_released': return 'Some of those seats are not on sale yet. ' + message;
    case 'sale_not_started': return 'The sale has not started yet.';
    case 'lottery_drawn': return 'The lottery has been drawn; entries are closed.';
    case 'refund_required': return 'The payment came too late: your hold had already expired. You will not be charged.';
    case 'hold_confirmed': return 'This hold was already paid.';
    case 'rate_limited': return 'Lots of people are here right now. Please wait a moment and try again.';
    case 'service_unavailable': return 'The ticket service is busy. Please try again in a moment.';
    case 'unauthorized': return 'Your pass for this step is no longer valid.';
    case 'access_denied':
      return 'Joining this sale is not possible from your network. If you think this is a mistake, try another connection (for example mobile data instead of Wi-Fi, or without a VPN).';
    case 'place_removed':
      return 'The organiser removed this place in line, so it can no longer buy tickets. If you think this is a mistake, please contact them.';
    case 'challenge_required':
    case 'challenge_failed':
    case 'challenge_expired':
    case 'challenge_reused':
      return 'Your browser could not be checked. Please reload the page and try again.';
    case 'invalid_request': return message ? 'That didn’t work: ' + message + '.' : 'That request was not valid.';
    case 'not_found':
      if (ctx && ctx.session) return 'This time is no longer on offer. Please choose another time.';
      // falls through: the message says what was not found
    default:
      if (status >= 500) return 'Something went wrong on our side. Please try again.';
      return message ? message.charAt(0).toUpperCase() + message.slice(1) + '.' : 'Something went wrong (' + code + ').';
  }
}

/** The heading of the waiting view. */
export function queueTitle(view, sale) {
  if (sale && sale.mode === 'lottery') return 'You’re entered in the lottery';
  return view.prequeue ? 'You’re in the waiting room' : 'You’re in line';
}

/**
 * The sentence the live region reads out for a status answer `view`
 * (`{position, ahead, estimated_wait_seconds, prequeue, paused}`).
 */
export function waitingLiveText(view, sale, locale) {
  const lottery = sale && sale.mode === 'lottery';
  const ahead = view.ahead == null ? null : view.ahead;
  let live;
  if (lottery) {
    live = 'You’re entered. Winners are drawn when entries close.';
  } else if (view.prequeue) {
    live = 'You’re in the waiting room. ' + (sale && sale.shuffle_prequeue
      ? 'When the sale opens, everyone here gets a random place in line ahead of later arrivals.'
      : 'Your place in line is ' + fmtNumber(view.position, locale) + '.');
  } else if (ahead === 0) {
    live = 'You’re next! Your place is 1.';
  } else {
    live = 'Your place in line is ' + fmtNumber(view.position, locale) + '. ' +
      fmtNumber(ahead, locale) + (ahead === 1 ? ' person is' : ' people are') + ' ahead of you. ' +
      (view.estimated_wait_seconds == null || view.paused
        ? 'Estimating the wait…'
        : 'Estimated wait: ' + fmtWait(view.estimated_wait_seconds) + '.');
  }
  if (view.paused) live += ' The sale is paused.';
  return live;
}

/** The progress bar's spoken value while waiting. */
export function aheadText(ahead) {
  return ahead === 0 ? 'You are next' : plural(ahead, 'person', 'people') + ' ahead';
}

/** "Your 2 tickets are held", "Your ticket is held". */
export function heldTitle(quantity, unitCount) {
  if (quantity === 1) return 'Your ticket is held';
  return 'Your ' + plural(quantity || unitCount, 'ticket', 'tickets') + ' are held';
}

/**
 * Seat labels typed by the buyer ("A/1/3, A/1/4") as the hold request's
 * seats: `{seats}` or `{error}` in words. Duplicates are dropped.
 */
export function parseSeats(input, limit) {
  const seen = new Set();
  const seats = String(input || '').split(/[\s,;]+/).map((s) => s.trim())
    .filter((s) => {
      if (!s || seen.has(s)) return false;
      seen.add(s);
      return true;
    });
  if (!seats.length) return { error: 'Enter at least one seat, like A/1/3.' };
  const max = limit || seats.length;
  if (seats.length > max) return { error: 'You can choose up to ' + plural(max, 'seat', 'seats') + '.' };
  const bad = seats.filter((s) => !/^[^/]+\/[^/]+\/[^/]+$/.test(s));
  if (bad.length) return { error: 'Seat labels look like A/1/3 (section/row/seat). Check: ' + bad.join(', ') + '.' };
  return { seats };
}

/** Progress of the browser check: "12,345 of about 16,384 checks". */
export function checkProgressText(attempts, expected, locale) {
  return fmtNumber(attempts, locale) + ' of about ' + fmtNumber(expected, locale) + ' checks';
}

// ---------------------------------------------------------------------------
// Money (SPEC §3 "Prices"): amounts are integers in the currency's minor
// units (cents for EUR, whole yen for JPY, fils for KWD), one ISO 4217
// currency per sale. Tested in money.test.mjs.
// ---------------------------------------------------------------------------

/** The currency's decimals (2 for EUR, 0 for JPY, 3 for KWD); null when the code is not one. */
export function currencyDigits(currency) {
  if (typeof currency !== 'string' || !/^[A-Za-z]{3}$/.test(currency)) return null;
  try {
    return new Intl.NumberFormat('en', { style: 'currency', currency }).resolvedOptions().maximumFractionDigits;
  } catch {
    return null;
  }
}

/** An integer amount of minor units as an exact decimal string of major units: 4500, 2 -> "45.00". */
export function minorToDecimal(amount, digits) {
  const neg = amount < 0;
  let s = String(Math.abs(Math.trunc(amount)));
  if (digits > 0) {
    s = s.padStart(digits + 1, '0');
    s = s.slice(0, -digits) + '.' + s.slice(-digits);
  }
  return (neg ? '-' : '') + s;
}

/**
 * `{amount, currency}` (amount in minor units) in the locale's words:
 * "€45.00", "¥6,800". '' for anything unpriced (null, no currency, no
 * amount), so a caller can print the result or leave the place empty.
 */
export function fmtMoney(money, locale) {
  if (!money || money.amount == null || money.amount === '' || !money.currency) return '';
  const amount = Number(money.amount);
  if (!Number.isFinite(amount)) return '';
  const currency = String(money.currency).toUpperCase();
  const digits = currencyDigits(currency);
  if (digits == null) return fmtNumber(amount, locale) + ' ' + currency;
  // An exact decimal string: Intl formats it without a detour through a
  // binary fraction (an engine without string support reads it as a Number).
  const value = minorToDecimal(amount, digits);
  const opts = { style: 'currency', currency, minimumFractionDigits: digits, maximumFractionDigits: digits };
  try {
    return new Intl.NumberFormat(locale, opts).format(value);
  } catch {
    return new Intl.NumberFormat(undefined, opts).format(value);
  }
}

/**
 * A price typed in major units ("45", "45.5", "45,50", "6800", "8,800") as
 * an integer of minor units: `{amount}` or `{error}` in words.
 */
export function toMinorUnits(input, currency) {
  const digits = currencyDigits(currency);
  if (digits == null) return { error: 'Give the currency first (three letters, like EUR).' };
  let s = String(input == null ? '' : input).trim().replace(/[\s\u00a0_]/g, '');
  // "8,800" and "1,234.50" group thousands; otherwise a comma is the decimal point ("45,50").
  if (/^\d{1,3}(,\d{3})+(\.\d*)?$/.test(s)) s = s.replace(/,/g, '');
  const m = /^(\d+)(?:[.,](\d*))?$/.exec(s);
  if (!m) return { error: 'A price is a number like ' + (digits ? '45.00' : '6800') + '.' };
  const frac = m[2] || '';
  if (frac.length > digits) {
    return { error: String(currency).toUpperCase() + (digits ? ' has ' + plural(digits, 'decimal', 'decimals') : ' has no decimals') + ': ' + s + '.' };
  }
  const amount = Number(m[1] + frac.padEnd(digits, '0'));
  if (!Number.isSafeInteger(amount)) return { error: 'That price is too large.' };
  return { amount };
}

/** The price categories of a sale's view (`availability.categories`), or [] when it has no prices. */
export function saleCategories(sale) {
  const cats = sale && sale.currency && sale.availability && sale.availability.categories;
  return Array.isArray(cats) ? cats : [];
}

/**
 * What the sales list says of a sale's prices: "¥6,800" for one price,
 * "from ¥6,800" for several (the lowest of those with tickets available,
 * else of all); '' without prices.
 */
export function priceFromText(sale, locale) {
  const cats = saleCategories(sale);
  if (!cats.length) return '';
  const open = cats.filter((c) => c.available > 0);
  const amounts = (open.length ? open : cats).map((c) => Number(c.amount));
  const low = Math.min(...amounts);
  const text = fmtMoney({ amount: low, currency: sale.currency }, locale);
  const one = cats.every((c) => Number(c.amount) === Number(cats[0].amount));
  return one ? text : 'from ' + text;
}

/** Why a category has nothing to offer, or how many are left: "12 left", "sold out", "on sale later". */
export function categoryAvailabilityText(cat, locale) {
  if (cat.available > 0) return fmtNumber(cat.available, locale) + ' left';
  if (cat.unreleased > 0) return 'on sale later';
  if (cat.held > 0) return 'none left right now';
  return 'sold out';
}

/** One held or sold unit's category and price: "Early bird · ¥6,800"; '' for an unpriced unit. */
export function unitPriceText(unit, currency, locale) {
  if (!unit || unit.price == null || !currency) return '';
  const price = fmtMoney({ amount: unit.price, currency }, locale);
  return unit.category ? unit.category + ' · ' + price : price;
}

/** "2 × ¥6,800 = ¥13,600" for a quantity of one category; '' without a price. */
export function estimateText(quantity, amount, currency, locale) {
  if (!(quantity >= 1) || amount == null || !currency) return '';
  const each = fmtMoney({ amount, currency }, locale);
  const sum = fmtMoney({ amount: Number(amount) * quantity, currency }, locale);
  return quantity === 1 ? each : quantity + ' × ' + each + ' = ' + sum;
}
