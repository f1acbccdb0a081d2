/**
 * Small SVG charts for the HTML report, drawn by our code when the report
 * is written (no chart library, no script in the page): grouped
 * horizontal bars, stacked horizontal bars, a histogram and columns with
 * min-max whiskers. Every chart is
 * an `<svg class="chart" data-chart=NAME>` whose data marks are
 * `<rect class="mark">` with a `<title>` giving the exact figure, so a
 * reader can hover and a test can count them.
 */
import { esc } from './topo_svg.js';

const FONT = 'font-family="Helvetica, Arial, sans-serif" font-size="11"';
const LABEL_W = 230;
const PLOT_W = 420;
const BAR_H = 16;
const ROW_GAP = 6;

/** Series colours: p2p, bounce, then the stage colours. */
const SERIES_COLOURS: Readonly<Record<string, string>> = {
  p2p: '#2e7d32',
  bounce: '#ef6c00',
};
const PALETTE = ['#1565c0', '#2e7d32', '#f9a825', '#6a1b9a', '#c62828', '#00838f', '#8d6e63'];

function colourOf(series: string, i: number): string {
  return SERIES_COLOURS[series] ?? PALETTE[i % PALETTE.length];
}

function legend(series: readonly string[], x: number, y: number): string {
  let cx = x;
  return series
    .map((s, i) => {
      const out = `<rect x="${cx}" y="${y - 9}" width="10" height="10" fill="${colourOf(s, i)}"/><text x="${cx + 14}" y="${y}">${esc(s)}</text>`;
      cx += 30 + s.length * 6.2;
      return out;
    })
    .join('');
}

function frame(name: string, title: string, w: number, h: number, body: string): string {
  return `<svg xmlns="http://www.w3.org/2000/svg" class="chart" data-chart="${esc(name)}" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}" ${FONT} role="img" aria-label="${esc(title)}"><text x="0" y="14" font-size="13" font-weight="bold">${esc(title)}</text>${body}</svg>`;
}

export interface GroupedBars {
  readonly name: string;
  readonly title: string;
  readonly series: readonly string[];
  /** One row group per category (a scenario), one value per series. */
  readonly groups: readonly { readonly label: string; readonly values: readonly number[] }[];
  readonly format: (v: number) => string;
}

/** Categories down the side, one bar per series in each, scaled to the largest value. */
export function groupedBars(c: GroupedBars): string {
  const max = Math.max(1e-12, ...c.groups.flatMap((g) => g.values));
  const parts: string[] = [legend(c.series, LABEL_W, 34)];
  let y = 46;
  for (const g of c.groups) {
    parts.push(`<text x="0" y="${y + (c.series.length * (BAR_H + 2)) / 2 + 4}">${esc(g.label)}</text>`);
    g.values.forEach((v, i) => {
      const w = Math.max(1, (v / max) * PLOT_W);
      parts.push(`<rect class="mark" x="${LABEL_W}" y="${y}" width="${w.toFixed(1)}" height="${BAR_H}" fill="${colourOf(c.series[i], i)}"><title>${esc(`${g.label}, ${c.series[i]}: ${c.format(v)}`)}</title></rect>`);
      parts.push(`<text x="${LABEL_W + w + 6}" y="${y + 12}">${esc(c.format(v))}</text>`);
      y += BAR_H + 2;
    });
    y += ROW_GAP * 2;
  }
  return frame(c.name, c.title, LABEL_W + PLOT_W + 120, y + 4, parts.join(''));
}

export interface StackedBars {
  readonly name: string;
  readonly title: string;
  readonly parts: readonly string[];
  readonly rows: readonly { readonly label: string; readonly values: readonly number[] }[];
  readonly format: (v: number) => string;
}

/** One bar per row, split into its parts (e.g. time per stage), on a shared scale. */
export function stackedBars(c: StackedBars): string {
  const max = Math.max(1e-12, ...c.rows.map((r) => r.values.reduce((a, b) => a + b, 0)));
  const out: string[] = [legend(c.parts, LABEL_W, 34)];
  let y = 46;
  for (const r of c.rows) {
    out.push(`<text x="0" y="${y + 13}">${esc(r.label)}</text>`);
    let x = LABEL_W;
    r.values.forEach((v, i) => {
      const w = (v / max) * PLOT_W;
      if (w <= 0) return;
      out.push(`<rect class="mark" x="${x.toFixed(1)}" y="${y}" width="${Math.max(0.5, w).toFixed(1)}" height="${BAR_H + 2}" fill="${colourOf(c.parts[i], i)}"><title>${esc(`${r.label}, ${c.parts[i]}: ${c.format(v)}`)}</title></rect>`);
      x += w;
    });
    out.push(`<text x="${x + 6}" y="${y + 13}">${esc(c.format(r.values.reduce((a, b) => a + b, 0)))}</text>`);
    y += BAR_H + 2 + ROW_GAP * 2;
  }
  return frame(c.name, c.title, LABEL_W + PLOT_W + 120, y + 4, out.join(''));
}

export interface Histogram {
  readonly name: string;
  readonly title: string;
  readonly samples: readonly number[];
  readonly bins: number;
  readonly unit: string;
  /** Marked with vertical lines (e.g. p99). */
  readonly marks?: readonly { readonly label: string; readonly value: number }[];
}

/** Counts of samples per equal-width bin, from 0 to the largest sample. */
export function histogram(c: Histogram): string {
  const W = 560;
  const H = 160;
  const x0 = 40;
  const y0 = 30;
  const max = Math.max(1e-12, ...c.samples);
  const width = max / c.bins;
  const counts = new Array<number>(c.bins).fill(0);
  for (const s of c.samples) counts[Math.min(c.bins - 1, Math.floor(s / width))]++;
  const top = Math.max(1, ...counts);
  const bw = W / c.bins;
  const out: string[] = [`<line x1="${x0}" y1="${y0 + H}" x2="${x0 + W}" y2="${y0 + H}" stroke="#333"/>`];
  counts.forEach((n, i) => {
    if (n === 0) return;
    const h = (n / top) * H;
    out.push(`<rect class="mark" x="${(x0 + i * bw + 1).toFixed(1)}" y="${(y0 + H - h).toFixed(1)}" width="${Math.max(1, bw - 2).toFixed(1)}" height="${h.toFixed(1)}" fill="#1565c0"><title>${esc(`${n} of ${c.samples.length} in [${(i * width).toFixed(0)}, ${((i + 1) * width).toFixed(0)}) ${c.unit}`)}</title></rect>`);
  });
  (c.marks ?? []).forEach((m, i) => {
    const x = x0 + (m.value / max) * W;
    // Labels stacked one per line, on the side of the line with room.
    const right = x < x0 + W / 2;
    out.push(`<line x1="${x.toFixed(1)}" y1="${y0}" x2="${x.toFixed(1)}" y2="${y0 + H}" stroke="#c62828" stroke-dasharray="4 3"/><text x="${(x + (right ? 4 : -4)).toFixed(1)}" y="${y0 + 12 + i * 13}" fill="#c62828" stroke="#fff" stroke-width="3" paint-order="stroke" text-anchor="${right ? 'start' : 'end'}">${esc(`${m.label} ${m.value.toFixed(0)} ${c.unit}`)}</text>`);
  });
  out.push(`<text x="${x0}" y="${y0 + H + 16}">0</text><text x="${x0 + W}" y="${y0 + H + 16}" text-anchor="end">${esc(`${max.toFixed(0)} ${c.unit}`)}</text><text x="0" y="${y0 + 10}">${top}</text>`);
  return frame(c.name, c.title, x0 + W + 30, y0 + H + 26, out.join(''));
}

export interface Columns {
  readonly name: string;
  readonly title: string;
  /** One column per category, left to right (e.g. command sizes, ascending), with its spread. */
  readonly points: readonly { readonly label: string; readonly value: number; readonly min: number; readonly max: number }[];
  readonly format: (v: number) => string;
  /** The y axis' caption (unit). */
  readonly yLabel: string;
  readonly xLabel: string;
}

/** Vertical bars from 0 to each value, a whisker from min to max, on a shared scale from 0 to the largest max. */
export function columns(c: Columns): string {
  const H = 180;
  const x0 = 60;
  const y0 = 34;
  const colW = 90;
  const top = Math.max(1e-12, ...c.points.map((p) => p.max));
  const y = (v: number) => y0 + H - (v / top) * H;
  const out: string[] = [
    `<line x1="${x0}" y1="${y0 + H}" x2="${x0 + c.points.length * colW}" y2="${y0 + H}" stroke="#333"/><line x1="${x0}" y1="${y0}" x2="${x0}" y2="${y0 + H}" stroke="#333"/>`,
    `<text x="${x0 - 4}" y="${y0 + 4}" text-anchor="end">${esc(c.format(top))}</text><text x="${x0 - 4}" y="${y0 + H}" text-anchor="end">0</text>`,
    `<text x="${x0 - 4}" y="${y0 + H / 2}" text-anchor="end">${esc(c.yLabel)}</text>`,
  ];
  c.points.forEach((p, i) => {
    const cx = x0 + i * colW + colW / 2;
    out.push(`<rect class="mark" x="${(cx - colW * 0.3).toFixed(1)}" y="${y(p.value).toFixed(1)}" width="${(colW * 0.6).toFixed(1)}" height="${(y0 + H - y(p.value)).toFixed(1)}" fill="#1565c0"><title>${esc(`${p.label}: ${c.format(p.value)} (min ${c.format(p.min)}, max ${c.format(p.max)})`)}</title></rect>`);
    out.push(`<line x1="${cx}" y1="${y(p.min).toFixed(1)}" x2="${cx}" y2="${y(p.max).toFixed(1)}" stroke="#333"/><line x1="${cx - 5}" y1="${y(p.max).toFixed(1)}" x2="${cx + 5}" y2="${y(p.max).toFixed(1)}" stroke="#333"/><line x1="${cx - 5}" y1="${y(p.min).toFixed(1)}" x2="${cx + 5}" y2="${y(p.min).toFixed(1)}" stroke="#333"/>`);
    out.push(`<text x="${cx}" y="${(y(p.max) - 4).toFixed(1)}" text-anchor="middle">${esc(c.format(p.value))}</text><text x="${cx}" y="${y0 + H + 14}" text-anchor="middle">${esc(p.label)}</text>`);
  });
  out.push(`<text x="${x0 + (c.points.length * colW) / 2}" y="${y0 + H + 30}" text-anchor="middle">${esc(c.xLabel)}</text>`);
  return frame(c.name, c.title, x0 + c.points.length * colW + 20, y0 + H + 38, out.join(''));
}
