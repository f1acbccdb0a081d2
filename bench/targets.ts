/**
 * Issue 11's figures, declared once as data: which `peervma bench` row,
 * which field of it (the ratio to its same-run baseline, or the row's own
 * median for rates without a baseline), and the bound. `peervma targets`
 * reads `bench --json` files and reports each figure over those runs.
 *
 * Nothing here measures, and no test asserts a speed: a target is what a
 * run is compared with, after the fact.
 */
import type { BenchRow } from './stats.js';

export interface Target {
  /** Bench row id (bench/suite.ts keeps them stable). */
  readonly id: string;
  /** `ratio` (median / same-run baseline median) or the row's `median`. */
  readonly field: 'ratio' | 'median';
  readonly atLeast?: number;
  readonly atMost?: number;
  /** A condition the row's note must show, e.g. no safety violation. */
  readonly noteMust?: { readonly re: RegExp; readonly says: string };
}

/** The streaming workloads: p2p must beat bounce by half again; every other scenario by 1.0. */
const STREAMING: ReadonlySet<string> = new Set(['accel-nic-stream', 'nic-nvme-queue']);

/** Both readings of a scenario: the rows' median ratio and the back-to-back pairs' median. */
function scenarioTargets(name: string, atLeast: number): Target[] {
  return [
    { id: `scenario.${name}`, field: 'ratio', atLeast },
    { id: `scenario.${name}.pairs`, field: 'median', atLeast },
  ];
}

const FIXED: readonly Target[] = [
  { id: 'dma.p2p.contig', field: 'ratio', atLeast: 0.9 },
  { id: 'dma.p2p.scattered', field: 'ratio', atLeast: 0.9 },
  { id: 'dma.p2p.cold', field: 'ratio', atLeast: 0.5 },
  { id: 'dma.p2p.64k', field: 'ratio', atLeast: 0.8 },
  { id: 'dma.bounce', field: 'ratio', atLeast: 0.5, atMost: 0.65 },
  { id: 'dma.p2p.2streams', field: 'ratio', atLeast: 0.8 },
  { id: 'inval.idle', field: 'ratio', atMost: 1.5 },
  { id: 'inval.streaming.p50', field: 'ratio', atMost: 1 },
  { id: 'inval.streaming.p99', field: 'ratio', atMost: 3 },
  { id: 'inval.batched', field: 'median', atLeast: 150_000, noteMust: { re: /safety violations seen: 0\b/, says: '0 viol.' } },
  { id: 'dma.p2p.storm', field: 'ratio', atLeast: 0.5 },
  { id: 'boot.64', field: 'ratio', atMost: 1.3 },
];

/**
 * The fixed figures, then one pair per scenario the runs measured (every
 * `scenario.<name>` row: the bench runs every shipped workload scenario, so a
 * new one is held to its figure without being listed here).
 */
export function targetsFor(runs: readonly (readonly BenchRow[])[]): Target[] {
  const names = new Set(runs.flatMap((rows) => rows.map((r) => /^scenario\.([\w-]+)$/.exec(r.id)?.[1]).filter((x): x is string => x !== undefined)));
  const scenarios = [...names].sort().flatMap((n) => scenarioTargets(n, STREAMING.has(n) ? 1.5 : 1.0));
  return [...FIXED, ...scenarios];
}

/** ">= 0.9", "<= 1.5", "0.5-0.65", ">= 150k", plus the note's condition. */
export function describeTarget(t: Target): string {
  const n = (v: number) => (v >= 1000 ? `${v / 1000}k` : String(v));
  const bound = t.atLeast !== undefined && t.atMost !== undefined ? `${n(t.atLeast)}-${n(t.atMost)}` : t.atLeast !== undefined ? `>= ${n(t.atLeast)}` : `<= ${n(t.atMost!)}`;
  return t.noteMust ? `${bound}, ${t.noteMust.says}` : bound;
}

/** The figure a row gives for a target, or null when the run did not measure it. */
export function figureOf(t: Target, row: BenchRow | undefined): number | null {
  if (!row) return null;
  const v = t.field === 'ratio' ? row.ratio : row.median;
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}

export function meets(t: Target, row: BenchRow, v: number): boolean {
  if (t.atLeast !== undefined && v < t.atLeast) return false;
  if (t.atMost !== undefined && v > t.atMost) return false;
  return !t.noteMust || t.noteMust.re.test(row.note ?? '');
}
