/**
 * Rows of `peervma bench`: every figure is measured `repeats` times and
 * reported as median / min / max, beside the median of a baseline row of
 * the same process run (ratio = median / baseline median). Nothing here
 * asserts a speed.
 */
import type { BenchRowView } from '../src/trace/report_html.js';

export interface Samples {
  readonly median: number;
  readonly min: number;
  readonly max: number;
  readonly n: number;
}

/**
 * One row of the JSON report (stable ids: see bench/suite.ts): the fields the
 * HTML report shows (id, unit, median/min/max, baseline id or null, ratio =
 * median / baseline's median or null), plus a one-line note of what was measured.
 */
export interface BenchRow extends BenchRowView {
  /** What was measured and how, one line (not in the table). */
  readonly note?: string;
}

export function summarise(xs: readonly number[]): Samples {
  if (xs.length === 0) throw new RangeError('bench: a row with no samples');
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  const median = s.length % 2 === 1 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
  return { median, min: s[0], max: s[s.length - 1], n: s.length };
}

/** Runs `fn` `n` times (after `warm` unrecorded runs) and collects its figures. */
export async function repeat(n: number, fn: () => Promise<number> | number, warm = 0): Promise<number[]> {
  for (let i = 0; i < warm; i++) await fn();
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push(await fn());
  return out;
}

/** Percentile (0..1) of a sample, nearest rank. */
export function quantile(xs: readonly number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))];
}

/** Collects rows; a row's ratio is taken against a baseline row added before it. */
export class RowSet {
  readonly rows: BenchRow[] = [];

  add(id: string, unit: string, xs: readonly number[], baseline: string | null = null, note?: string): BenchRow {
    const s = summarise(xs);
    let ratio: number | null = null;
    if (baseline !== null) {
      const b = this.get(baseline);
      ratio = b.median === 0 ? null : s.median / b.median;
    }
    const row: BenchRow = { id, unit, median: s.median, min: s.min, max: s.max, baseline, ratio, ...(note ? { note } : {}) };
    this.rows.push(row);
    return row;
  }

  get(id: string): BenchRow {
    const r = this.rows.find((x) => x.id === id);
    if (!r) throw new RangeError(`bench: baseline row '${id}' was not measured before its users`);
    return r;
  }
}
