/**
 * Sweeps: many seeds, each on its own machine, in a piscina pool (DESIGN.md
 * section 4: piscina runs independent CPU jobs such as the seeds of a
 * stress run); shards of a sweep for batch systems; merging shard files.
 *
 * A shard I/N (0 <= I < N) runs the seeds at positions I, I+N, I+2N, ...
 * of A..B, so N shards of one range cover it exactly once whatever N is.
 */
import { readFileSync } from 'node:fs';
import { Piscina } from 'piscina';
import { WORKER_EXEC_ARGV, compiledModule } from '../devices/worker_entry.js';
import { percentile, type InjectOutcome, type StressReport } from './report.js';
import type { StressOptions } from './run.js';

export interface SweepFile {
  readonly kind: 'peervma-stress';
  readonly shard: { readonly index: number; readonly count: number } | null;
  readonly seeds: readonly StressReport[];
  readonly totals: SweepTotals;
}

export interface SweepTotals {
  readonly seeds: number;
  readonly ops: number;
  readonly invalidations: number;
  readonly ranges: number;
  readonly violations: number;
  readonly seedsWithViolations: number;
  /** Violations per 'source/kind' over every seed. */
  readonly violationKinds: Readonly<Record<string, number>>;
  readonly iommuFaults: number;
  /** Highest per-seed p99 and max ack latency (µs), and the median of the per-seed p50s. */
  readonly ackP50Us: number;
  readonly ackP99Us: number;
  readonly ackMaxUs: number;
  /** Per injected fault kind: outcome (' (by probe)' when only the probe after the schedule showed it) -> seeds. */
  readonly injected: Readonly<Record<string, Readonly<Record<string, number>>>>;
}

export function seedsOfShard(lo: number, hi: number, shard: { index: number; count: number } | null): number[] {
  const out: number[] = [];
  for (let s = lo, k = 0; s <= hi; s++, k++) if (!shard || k % shard.count === shard.index) out.push(s);
  return out;
}

export function totalsOf(rs: readonly StressReport[]): SweepTotals {
  const injected: Record<string, Record<string, number>> = {};
  const kinds: Record<string, number> = {};
  for (const r of rs) {
    // A shard file written before the per-kind counts has none: its violations are totalled under a name that says so.
    const own = r.violationKinds ?? (r.violationCount > 0 ? { 'uncounted/shard-without-kinds': r.violationCount } : {});
    for (const [k, n] of Object.entries(own)) kinds[k] = (kinds[k] ?? 0) + n;
    for (const i of r.injected as InjectOutcome[]) {
      const k = (injected[`${i.kind} (IOMMU ${r.iommu ? 'on' : 'off'})`] ??= {});
      // A fault only the post-schedule probe showed is counted apart: its device spent the schedule parked.
      const o = i.shownBy === 'probe' ? `${i.outcome} (by probe)` : i.outcome;
      k[o] = (k[o] ?? 0) + 1;
    }
  }
  return {
    seeds: rs.length,
    ops: rs.reduce((s, r) => s + r.ops, 0),
    invalidations: rs.reduce((s, r) => s + r.invalidations, 0),
    ranges: rs.reduce((s, r) => s + r.ranges, 0),
    violations: rs.reduce((s, r) => s + r.violationCount, 0),
    seedsWithViolations: rs.filter((r) => r.violationCount > 0).length,
    violationKinds: kinds,
    iommuFaults: rs.reduce((s, r) => s + r.iommuFaults, 0),
    ackP50Us: percentile(rs.map((r) => r.ackUs.p50).sort((a, b) => a - b), 50),
    ackP99Us: Math.max(0, ...rs.map((r) => r.ackUs.p99)),
    ackMaxUs: Math.max(0, ...rs.map((r) => r.ackUs.max)),
    injected,
  };
}

/** Runs `seeds` in a pool of `jobs` threads; `onDone` after each seed (progress). */
export async function runSweep(seeds: readonly number[], base: Omit<StressOptions, 'seed' | 'onStep'>, jobs: number, onDone: (r: StressReport) => void): Promise<StressReport[]> {
  const pool = new Piscina({ filename: compiledModule('src/stress/seed_task'), minThreads: 1, maxThreads: jobs, idleTimeout: 1000, execArgv: WORKER_EXEC_ARGV });
  try {
    const out = await Promise.all(
      seeds.map(async (seed) => {
        let r: StressReport;
        try {
          r = (await pool.run({ ...base, seed })) as StressReport;
        } catch (e) {
          r = failedRun(seed, base, e instanceof Error ? e.message : String(e));
        }
        onDone(r);
        return r;
      }),
    );
    return out.sort((a, b) => a.seed - b.seed);
  } finally {
    await pool.destroy();
  }
}

/**
 * Calls `emit` with each report in the order of `seeds`, as soon as it and
 * every seed before it are done: a sweep's lines read in seed order though
 * its seeds finish in any order (pool threads, or one thread's queue).
 */
export function inSeedOrder(seeds: readonly number[], emit: (r: StressReport) => void): (r: StressReport) => void {
  const done = new Map<number, StressReport>();
  let next = 0;
  return (r) => {
    done.set(r.seed, r);
    for (let d = done.get(seeds[next]); d !== undefined; d = done.get(seeds[next])) {
      done.delete(seeds[next++]);
      emit(d);
    }
  };
}

/** A seed whose run could not finish (the machine failed to boot, an internal error): reported, exit 1. */
export function failedRun(seed: number, o: Omit<StressOptions, 'seed' | 'onStep'>, message: string): StressReport {
  const v = { source: 'protocol' as const, kind: 'run-failed', device: '-', buf: null, page: null, generation: null, step: -1, op: 'run', detail: message };
  return { seed, schedule: '-', iommu: o.iommu, importers: o.importers, gapMaxUs: o.gapMaxUs ?? 2000, slow: o.slow ?? true, ops: 0, opsFailed: 0, invalidations: 0, ranges: 0, wallMs: 0, rangesPerSec: 0, pagesRead: 0, pagesWritten: 0, ioErrors: 0, iommuFaults: 0, ackUs: { p50: 0, p99: 0, max: 0, n: 0 }, roundTripUs: 0, violations: [v], violationCount: 1, violationKinds: { 'protocol/run-failed': 1 }, injected: [], exitCode: 1 };
}

/** `stress merge`: shard files in, one file out listing every seed once. */
export function mergeFiles(files: readonly string[]): SweepFile {
  const bySeed = new Map<string, StressReport>();
  for (const f of files) {
    let parsed: SweepFile;
    try {
      parsed = JSON.parse(readFileSync(f, 'utf8')) as SweepFile;
    } catch (e) {
      throw new MergeError(`${f}: not readable JSON (${(e as Error).message})`);
    }
    if (parsed?.kind !== 'peervma-stress' || !Array.isArray(parsed.seeds)) throw new MergeError(`${f}: not a 'peervma stress --json' or '--shard' file (no kind: peervma-stress / seeds)`);
    for (const r of parsed.seeds) {
      const key = `${r.seed}/${r.iommu ? 'on' : 'off'}/${r.injected.map((i: InjectOutcome) => i.kind).join(',')}`;
      if (bySeed.has(key)) throw new MergeError(`${f}: seed ${r.seed} (${key}) is also in another file: overlapping shards`);
      bySeed.set(key, r);
    }
  }
  const seeds = [...bySeed.values()].sort((a, b) => a.seed - b.seed);
  return { kind: 'peervma-stress', shard: null, seeds, totals: totalsOf(seeds) };
}

export class MergeError extends Error {}
