// Small time-series charts for the admin console, drawn as inline SVG: the
// last few minutes of one figure of a sale (queue length, admission rate,
// units sold). The series live in memory in the page (sampled at each
// refresh); nothing is stored and no library is used.
//
// `Series` and `chartGeometry` are pure (admin-chart.test.mjs); `drawChart`
// writes the SVG.

/** How much history a chart shows. */
export const WINDOW_MS = 5 * 60_000;

const SVG_NS = 'http://www.w3.org/2000/svg';

/** Samples `{t, v}` of one figure, oldest first, kept for `keepMs`. */
export class Series {
  constructor(keepMs = WINDOW_MS) {
    this.keepMs = keepMs;
    this.points = [];
  }

  /** Adds a sample (a null value is a gap: the figure was unknown). */
  add(t, v) {
    const last = this.points[this.points.length - 1];
    if (last && t <= last.t) return; // out of order: keep time moving forward
    this.points.push({ t, v: v == null || !Number.isFinite(Number(v)) ? null : Number(v) });
    const cutoff = t - this.keepMs;
    let drop = 0;
    while (drop < this.points.length - 1 && this.points[drop].t < cutoff) drop++;
    if (drop) this.points.splice(0, drop);
  }

  /** The latest known value, or null. */
  last() {
    for (let i = this.points.length - 1; i >= 0; i--) if (this.points[i].v != null) return this.points[i].v;
    return null;
  }

  /** The largest known value, or null. */
  max() {
    let m = null;
    for (const p of this.points) if (p.v != null && (m == null || p.v > m)) m = p.v;
    return m;
  }
}

/** A "nice" upper bound for an axis: 1, 2, 5 × 10^n at or above `v` (1 for 0). */
export function niceMax(v) {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

/**
 * The SVG path data of `points` in a `width` × `height` box showing
 * [now - windowMs, now] and [0, yMax]: `{line, area}` ('' without points).
 * Gaps (null values) break the line.
 */
export function chartGeometry(points, { width, height, now, windowMs = WINDOW_MS, yMax, pad = 2 }) {
  const x = (t) => ((t - (now - windowMs)) / windowMs) * width;
  const y = (v) => height - pad - (Math.min(v, yMax) / yMax) * (height - 2 * pad);
  const r = (n) => Math.round(n * 10) / 10;
  let line = '';
  let area = '';
  let run = [];
  const flush = () => {
    if (!run.length) return;
    const seg = run.map((p, i) => (i ? 'L' : 'M') + r(x(p.t)) + ' ' + r(y(p.v))).join(' ');
    line += (line ? ' ' : '') + seg;
    area += (area ? ' ' : '') + seg + ' L' + r(x(run[run.length - 1].t)) + ' ' + height + ' L' + r(x(run[0].t)) + ' ' + height + ' Z';
    run = [];
  };
  for (const p of points) {
    if (p.t < now - windowMs) continue;
    if (p.v == null) flush();
    else run.push(p);
  }
  flush();
  return { line, area };
}

function svgEl(tag, attrs) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  return el;
}

/**
 * Draws `series` into `svg` (viewBox 0 0 300 80), with the axis maximum at
 * the top left and the latest value at the top right; `desc` (the svg's
 * <desc>) says the same in words for screen readers. `fmt` formats values.
 */
export function drawChart(svg, series, { now, fmt = String, unit = '' }) {
  const width = 300;
  const height = 80;
  const desc = svg.querySelector('desc');
  for (const child of Array.from(svg.childNodes)) if (child !== desc) svg.removeChild(child);
  const yMax = niceMax(series.max() || 0);
  // The window grows with the data, from one minute up to WINDOW_MS, so a
  // console opened a moment ago does not squeeze its line into one corner.
  const first = series.points.length ? series.points[0].t : now;
  const windowMs = Math.min(WINDOW_MS, Math.max(60_000, now - first));
  const { line, area } = chartGeometry(series.points, { width, height, now, windowMs, yMax });
  svg.appendChild(svgEl('line', { x1: 0, y1: height - 0.5, x2: width, y2: height - 0.5, class: 'chart-axis' }));
  svg.appendChild(svgEl('line', { x1: 0, y1: 2, x2: width, y2: 2, class: 'chart-grid' }));
  if (area) svg.appendChild(svgEl('path', { d: area, class: 'chart-area' }));
  if (line) svg.appendChild(svgEl('path', { d: line, class: 'chart-line' }));
  const top = svgEl('text', { x: 3, y: 13, class: 'chart-label' });
  top.textContent = fmt(yMax) + unit;
  svg.appendChild(top);
  const last = series.last();
  const now_ = svgEl('text', { x: width - 3, y: 13, class: 'chart-label chart-now', 'text-anchor': 'end' });
  now_.textContent = last == null ? '–' : 'now ' + fmt(last) + unit;
  svg.appendChild(now_);
  if (desc) {
    const mins = Math.round(windowMs / 60_000);
    desc.textContent = last == null
      ? 'No data yet.'
      : `Last ${mins === 1 ? 'minute' : mins + ' minutes'}: now ${fmt(last)}${unit}, highest ${fmt(series.max())}${unit}.`;
  }
  svg.dataset.points = String(series.points.length);
}
