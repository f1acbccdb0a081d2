/**
 * The HTML report of `peervma stress --report FILE`: one self-contained
 * page (inline CSS, SVG drawn by svg_charts.ts, no script, no network)
 * with one row per seed (seed, schedule, ops, invalidations, violations,
 * IOMMU faults, ack p50 / p99 / max) and the invalidation ack latency per
 * seed as grouped bars (p50, p99, max). A stress run keeps percentiles,
 * not every ack, so the chart shows those three figures per seed.
 */
import { writeOutputFile } from '../common/output_file_write.js';
import { groupedBars } from './svg_charts.js';
import { reportPage } from './report_html.js';
import { esc } from './topo_svg.js';

/** What the report shows of a seed's run (the shape of src/stress/report.ts StressReport). */
export interface StressSeedView {
  readonly seed: number;
  readonly schedule: string;
  readonly ops: number;
  readonly invalidations: number;
  readonly violationCount: number;
  readonly iommuFaults: number;
  readonly ackUs: { readonly p50: number; readonly p99: number; readonly max: number; readonly n: number };
}

const us = (v: number) => `${v.toFixed(1)} us`;

/** Seeds drawn in the chart at most (a long sweep's table keeps every seed). */
const CHART_SEEDS = 60;

export function renderStressReport(seeds: readonly StressSeedView[], notes: readonly string[] = []): string {
  const rows = seeds
    .map((r) => `<tr data-seed="${r.seed}"><td>${r.seed}</td><td>${esc(r.schedule)}</td><td>${r.ops}</td><td>${r.invalidations}</td><td>${r.violationCount}</td><td>${r.iommuFaults}</td><td>${r.ackUs.n}</td><td>${us(r.ackUs.p50)}</td><td>${us(r.ackUs.p99)}</td><td>${us(r.ackUs.max)}</td></tr>`)
    .join('');
  const shown = seeds.slice(0, CHART_SEEDS);
  const chart = groupedBars({
    name: 'stress-acks',
    title: `Invalidation ack latency per seed (p50, p99, max)${seeds.length > shown.length ? `, first ${shown.length} of ${seeds.length} seeds` : ''}`,
    series: ['p50', 'p99', 'max'],
    groups: shown.map((r) => ({ label: `seed ${r.seed}`, values: [r.ackUs.p50, r.ackUs.p99, r.ackUs.max] })),
    format: us,
  });
  const violations = seeds.reduce((n, r) => n + r.violationCount, 0);
  const title = `peervma stress: ${seeds.length} seed(s), ${violations} violation(s)`;
  return reportPage(title, [
    `<h1>${esc(title)}</h1>`,
    ...notes.map((n) => `<p class="note">${esc(n)}</p>`),
    '<h2>Seeds</h2>',
    `<table class="seeds"><tr><th>seed</th><th>schedule</th><th>ops</th><th>invalidations</th><th>violations</th><th>IOMMU faults</th><th>acks</th><th>ack p50</th><th>ack p99</th><th>ack max</th></tr>${rows}</table>`,
    '<h2>Invalidation ack latency</h2>',
    chart,
    '<p class="note">Ack latency: from the kernel posting an invalidation to a device until that device acks it (µs, wall clock on this host).</p>',
  ]);
}

export function writeStressReport(file: string, seeds: readonly StressSeedView[], notes: readonly string[] = []): void {
  writeOutputFile(file, renderStressReport(seeds, notes));
}
