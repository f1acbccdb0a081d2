/**
 * `peervma bench`: the one place speed is measured (issue 11). Two suites,
 * `quick` (under 3 minutes on 2 cores) and `full`; every row is repeated
 * and reported as median / min / max with a ratio to a baseline measured
 * earlier in the same process run. Nothing here asserts a speed: a bench
 * fails only when a data check or a safety check fails.
 *
 * Stable row ids, by section:
 *   memcpy    memcpy.dram, memcpy.cached, memcpy.2threads (baselines)
 *   atomics   atomics.rtt (main Atomics.wait <-> worker Atomics.wait round trip:
 *             the floor), atomics.rtt.async (main in Atomics.waitAsync)
 *   inval     inval.raw (baseline), inval.idle
 *   dma       memcpy.contig (baseline), dma.p2p.contig, dma.p2p.64k (and .same), inval.streaming.p50/.p99,
 *             atomics.rtt.streaming (baseline, and its .p99), inval.streaming.p50/.p99.same,
 *             inval.streaming.b2b.p50/.p99,
 *             inval.batched, dma.p2p.storm, memcpy.scattered,
 *             dma.p2p.scattered, dma.p2p.cold, memcpy.2threads.same (baseline),
 *             dma.p2p.2streams (and .same), dma.bounce,
 *             dma.p2p.cmd.<size> (bench/cmd_size.ts)
 *   boot      boot.64.plain (baseline), boot.64, boot.256, boot.rss.plain (baseline), boot.rss
 *   scenario  scenario.<name>.bounce (baseline), scenario.<name>
 *   scale     scale.stream.<N>[.notokens], scale.ack.p50|p99.<N>[.notokens],
 *             scale.pcie.<N>.bounce (baseline), scale.pcie.<N> (bench/scale.ts)
 *             scale.<workload>.<N>[.bounce|.pcie|.pcie.bounce] (bench/scale_workloads.ts)
 *   fabric    fabric.bounce.<N> (baseline), fabric.p2p.<N> (modeled, bench/fabric_load.ts)
 * A section whose baseline lives in another section needs that one too
 * (--only dma runs memcpy and atomics first).
 */
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { pingPong } from './pingpong.js';
import { memcpyRate, twoThreads } from './memcpy.js';
import { invalidationRows } from './invalidation.js';
import { dmaRows } from './dma_rig.js';
import { cmdSizeRows } from './cmd_size.js';
import { bootRows } from './boot.js';
import { scaleRows, SCALE_FULL, SCALE_QUICK } from './scale.js';
import { scaleWorkloadRows } from './scale_workloads.js';
import { scenarioRows, type ScenarioObserver } from './scenarios.js';
import { fabricRows } from './fabric_load.js';
import { repeat, RowSet, type BenchRow } from './stats.js';
import { CACHED_SPAN, DRAM_SPAN, MiB } from '../src/workloads/memcpy_baseline.js';

export const SECTIONS = ['memcpy', 'atomics', 'inval', 'dma', 'boot', 'scenario', 'scale', 'fabric'] as const;
export type Section = (typeof SECTIONS)[number];

export interface SuiteSpec {
  readonly repeats: number;
  readonly dmaSpan: number;
  readonly coldSpan: number;
  readonly streamMs: number;
  readonly invIterations: number;
  readonly pingRounds: number;
  readonly quickScenarios: boolean;
}

export const SUITES: Readonly<Record<'quick' | 'full', SuiteSpec>> = {
  quick: { repeats: 3, dmaSpan: 128 * MiB, coldSpan: 32 * MiB, streamMs: 400, invIterations: 300, pingRounds: 3000, quickScenarios: true },
  full: { repeats: 5, dmaSpan: 128 * MiB, coldSpan: 128 * MiB, streamMs: 1000, invIterations: 1000, pingRounds: 20000, quickScenarios: false },
};

/** Sections a section's baselines come from. */
const NEEDS: Readonly<Record<Section, readonly Section[]>> = { memcpy: [], atomics: [], inval: [], dma: ['memcpy', 'atomics'], boot: [], scenario: [], scale: ['memcpy', 'atomics'], fabric: [] };

export interface BenchReport {
  readonly machine: Record<string, unknown>;
  readonly rows: readonly BenchRow[];
}

const root = fileURLToPath(new URL(import.meta.url.includes('/dist/') ? '../../' : '../', import.meta.url));

/** The sections runSuite runs for `only`, in order (with the ones their baselines need). */
export function sectionsToRun(only: readonly Section[] = SECTIONS): Section[] {
  const want = new Set<Section>(only.flatMap((x) => [...NEEDS[x], x]));
  return SECTIONS.filter((x) => want.has(x));
}

/**
 * `log` is told each section as it starts (and the dma and scenario steps);
 * `scenarios` watches the scenario rows (trace, report pairs, a subset).
 */
export async function runSuite(suite: 'quick' | 'full', only: readonly Section[] = SECTIONS, log: (m: string) => void = () => undefined, scenarios: ScenarioObserver = {}): Promise<BenchReport> {
  const s = SUITES[suite];
  const want = new Set<Section>(sectionsToRun(only));
  const rows = new RowSet();
  const t0 = performance.now();
  const machine = {
    suite,
    date: new Date().toISOString(),
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    node: process.version,
    platform: `${os.platform()} ${os.release()}`,
    totalMemMiB: Math.round(os.totalmem() / MiB),
    loadAvgAtStart: os.loadavg().map((x) => Number(x.toFixed(2))),
    repeats: s.repeats,
  };
  const step = (name: Section) => {
    log(`bench: ${name} (${((performance.now() - t0) / 1000).toFixed(0)} s)`);
  };
  if (want.has('memcpy')) {
    step('memcpy');
    rows.add('memcpy.dram', 'MB/s', await repeat(s.repeats, memcpyRate(DRAM_SPAN, 2 * DRAM_SPAN)), null, `one thread, TypedArray.set, 1 MiB chunks over a ${DRAM_SPAN / MiB} MiB span`);
    rows.add('memcpy.cached', 'MB/s', await repeat(s.repeats, memcpyRate(CACHED_SPAN, 16 * CACHED_SPAN)), null, `as memcpy.dram over a ${CACHED_SPAN / MiB} MiB span (in cache)`);
    const two = await twoThreads(s.dmaSpan / 2);
    try {
      rows.add('memcpy.2threads', 'MB/s', await repeat(s.repeats, () => two.sample(2), 1), null, `two worker threads, ${s.dmaSpan / 2 / MiB} MiB span each, aggregate`);
    } finally {
      await two.close();
    }
  }
  if (want.has('atomics')) {
    step('atomics');
    rows.add('atomics.rtt', 'us', await repeat(s.repeats, async () => (await pingPong('wait', s.pingRounds)).roundTripUs), null, 'Atomics round trip main (Atomics.wait, blocking) <-> worker (Atomics.wait), mean: the floor');
    rows.add('atomics.rtt.async', 'us', await repeat(s.repeats, async () => (await pingPong('waitAsync', s.pingRounds)).roundTripUs), 'atomics.rtt', 'as atomics.rtt with main in Atomics.waitAsync (an event-loop turn per round trip), mean');
  }
  if (want.has('inval')) {
    step('inval');
    await invalidationRows(rows, s.repeats, s.invIterations);
  }
  if (want.has('dma')) {
    step('dma');
    await dmaRows(rows, { span: s.dmaSpan, coldSpan: s.coldSpan, repeats: s.repeats, streamMs: s.streamMs }, log);
    await cmdSizeRows(rows, { span: s.dmaSpan, repeats: s.repeats }, log); // DRAM scale, as memcpy.dram: a smaller span reads from cache
  }
  if (want.has('boot')) {
    step('boot');
    await bootRows(rows, s.repeats, suite === 'quick' ? 1 : 3);
  }
  if (want.has('scenario')) {
    step('scenario');
    await scenarioRows(rows, `${root}scenarios`, s.repeats, s.quickScenarios, { log, ...scenarios });
  }
  if (want.has('scale')) {
    step('scale');
    await scaleRows(rows, { counts: suite === 'quick' ? SCALE_QUICK : SCALE_FULL, repeats: s.repeats, streamMs: s.streamMs }, log);
    const kinds = suite === 'quick' ? (['camera-chain'] as const) : (['camera-chain', 'accel-nic-stream'] as const);
    await scaleWorkloadRows(rows, { kinds, counts: suite === 'quick' ? SCALE_QUICK : SCALE_FULL, repeats: s.repeats }, log);
  }
  if (want.has('fabric')) {
    step('fabric');
    fabricRows(rows, s.repeats);
  }
  log(`bench: done in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
  return { machine: { ...machine, seconds: Number(((performance.now() - t0) / 1000).toFixed(1)), loadAvgAtEnd: os.loadavg().map((x) => Number(x.toFixed(2))) }, rows: rows.rows };
}

function num(x: number): string {
  if (x >= 1000) return x.toFixed(0);
  if (x >= 10) return x.toFixed(1);
  return x.toFixed(2);
}

/** A ratio in the table's 7-character column: 3 decimals, fewer for large ratios (the JSON keeps them all). */
function ratioText(x: number): string {
  return x >= 1000 ? x.toFixed(0) : x >= 100 ? x.toFixed(1) : x.toFixed(3);
}

/** The table printed to stdout: at most 100 columns. */
export function formatTable(r: BenchReport): string {
  const W = { id: 36, unit: 8, n: 8, ratio: 7 };
  const line = (c: string[]) => {
    const s = `${c[0].padEnd(W.id)} ${c[1].padEnd(W.unit)} ${c[2].padStart(W.n)} ${c[3].padStart(W.n)} ${c[4].padStart(W.n)} ${c[5].padStart(W.ratio)}  ${c[6]}`;
    return s.length > 100 ? s.slice(0, 99) + '…' : s;
  };
  const out = [line(['id', 'unit', 'median', 'min', 'max', 'ratio', 'vs']), '-'.repeat(100)];
  // A baseline named after its row (scenario.x.bounce for scenario.x) shows as its suffix.
  const vs = (x: BenchRow) => (x.baseline === null ? '' : x.baseline.startsWith(x.id + '.') ? x.baseline.slice(x.id.length) : x.baseline);
  for (const x of r.rows) out.push(line([x.id, x.unit, num(x.median), num(x.min), num(x.max), x.ratio === null ? '' : ratioText(x.ratio), vs(x)]));
  const m = r.machine;
  out.push('-'.repeat(100), `${m.suite} suite, ${m.repeats} runs per row, ${m.seconds} s; ${m.cpus} cpus, node ${m.node}; load ${(m.loadAvgAtStart as number[]).join(' ')} -> ${(m.loadAvgAtEnd as number[]).join(' ')}`.slice(0, 100));
  out.push("Other run counts are in the row's --json note: scenario rows (3+ pairs), boot.256, boot.rss*.",
    'ratio = median / median of the vs row, both measured in this run.', 'Other processes share these cores: compare ratios, not MB/s.');
  return out.join('\n');
}
