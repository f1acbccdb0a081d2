/**
 * scenario.<name> rows: every shipped scenario that has a workload (not the
 * topo-* examples) run in p2p mode and in bounce mode, `repeats` times
 * each, on a new machine each run. The figure is the run's throughput
 * (payload / timed window: data movement and device compute, not setup
 * nor verification); scenario.<name>.bounce is the baseline of
 * scenario.<name>, so its ratio is p2p / bounce. For accel-progress the
 * figure is the accelerator's progress while watched (iterations per
 * second), p2p / bounce. Every run's data checks must pass.
 *
 * Repeats come in pairs (one p2p run, one bounce run), the first mode
 * alternating from pair to pair so neither mode always runs first (cold
 * JIT, page cache). A warm-up pair runs first and is not recorded: the
 * first runs of a scenario in a process compile its kernel, driver and
 * workload code on the main thread, and its device code on the device
 * threads; each mode has its own DeviceWorkerPool for the scenario, so
 * every recorded run of a mode re-configures the device threads its
 * warm-up (and earlier pairs) ran on, stopped and reset in between (an
 * emulator cost out of the windows, as the kernel's already was). The
 * first pair's ratio was the one most often far from the rest.
 * After the suite's `repeats` pairs, a scenario whose runs are short keeps
 * adding pairs while its time budget allows (at most MAX_PAIRS): under
 * load a run's figure swings 2-3x with the scheduler, and a median of
 * 9-15 short runs is much steadier than one of 3 at little cost to the
 * suite's wall time, which the long scenarios dominate. The row's note
 * gives the number of runs. scenario.<name>.pairs is the
 * p2p / bounce ratio of each pair's two runs (back to back, so under about
 * the same load from other processes): its median is the steadier figure
 * on a busy machine, its min/max show how far single runs swing.
 *
 * Observed (peervma bench --trace / --report): the suite's last mandatory
 * pair of each scenario is recorded by the trace recorder and handed to
 * `pair` (the HTML report's P2P vs bounce pairs); other pairs are not
 * traced, so the recorder's draining does not touch most timed runs.
 */
import { readdirSync } from 'node:fs';
import { InputError } from '../src/errors.js';
import { DeviceWorkerPool } from '../src/devices/worker_pool.js';
import { loadScenarioFile } from '../src/scenario/load.js';
import { runScenario, type RunReport, type RunTracer } from '../src/scenario/run.js';
import { assertChecks, throughput } from '../src/trace/summary.js';
import type { Mode } from '../src/workloads/workload.js';
import type { RowSet } from './stats.js';

/**
 * Sizes (the workload's size knob: frames, requests, iterations) the bench
 * runs instead of the shipped one. Quick suite: the scenarios that are
 * long at their shipped size run shorter. Both suites: a streaming section
 * of well under 100 ms is lengthened — its figure is then a few scheduler
 * slices, and nic-nvme-queue's pairs spread 0.9-1.9x at 2000 requests
 * (a run's boot and check, not its stream, dominate its wall time, so 3x
 * the requests costs a pair ~20%). hmm-peer's window (migration, TRANSFORM,
 * SEND of its buffer) was 10-25 ms at 1024 pages, so one scavenge or one
 * descheduled thread decided a pair: the bench runs it at 2048 pages, the
 * most the accelerator's 8 MiB BAR maps at once (same workload, a buffer
 * twice the size; the tests run small ones).
 */
const LONGER: Readonly<Record<string, number>> = { 'nic-nvme-queue': 6000, 'hmm-peer': 2048 };
const SIZE: Readonly<Record<'quick' | 'full', Readonly<Record<string, number>>>> = {
  quick: { ...LONGER, 'camera-farm': 4, 'camera-chain': 8, 'camera-chain-final': 8, 'camera-chain-iommu': 8, 'accel-progress': 500 },
  full: LONGER,
};
/** Time a scenario may take (both modes, all pairs, the warm-up included) before no further pair is added, by suite. */
const BUDGET_MS = { quick: 5000, full: 12000 };
/** Most pairs a scenario records. */
const MAX_PAIRS = 15;
/** Pairs run before the recorded ones and thrown away (see the top comment). */
const WARMUP_PAIRS = 1;

/** The modes of pair k in the order they run: the first mode alternates (cold JIT, page cache). */
export function pairOrder(k: number): readonly Mode[] {
  return k % 2 === 0 ? ['p2p', 'bounce'] : ['bounce', 'p2p'];
}

function figure(r: RunReport): { value: number; unit: string } {
  if (r.workload === 'accel-progress') {
    const ms = Number(r.accounting.extra.watchedMs);
    return { value: Number(r.accounting.extra.iterations) / (ms / 1000), unit: 'iter/s' };
  }
  return { value: throughput(r) / 1e6, unit: 'MB/s' };
}

/** What watches the scenario rows (bench --trace / --report). */
export interface ScenarioObserver {
  /** Records the last repeat of each scenario, both modes. */
  readonly trace?: RunTracer;
  /** Given the last repeat's p2p and bounce reports of each scenario. */
  readonly pair?: (p2p: RunReport, bounce: RunReport) => void;
  /** Only these scenarios (names); absent: every one with a workload. */
  readonly names?: readonly string[];
  /** Told as each scenario starts. */
  readonly log?: (m: string) => void;
}

export async function scenarioRows(rows: RowSet, dir: string, repeats: number, quick: boolean, obs: ScenarioObserver = {}): Promise<void> {
  const files = readdirSync(dir).filter((f) => f.endsWith('.yaml')).sort();
  const scs = (await Promise.all(files.map((f) => loadScenarioFile(`${dir}/${f}`)))).filter((sc) => sc.workload);
  const unknown = (obs.names ?? []).filter((n) => !scs.some((sc) => sc.name === n));
  // Bad input (exit 2, the whole list), not an internal error.
  if (unknown.length > 0) throw new InputError(`bench: no scenario with a workload named ${unknown.join(', ')} in ${dir} (have ${scs.map((sc) => sc.name).join(', ')})`);
  for (const sc of scs) {
    if (obs.names && !obs.names.includes(sc.name)) continue;
    obs.log?.(`bench: scenario ${sc.name}`);
    const frames: number | undefined = SIZE[quick ? 'quick' : 'full'][sc.name];
    const out: Record<Mode, number[]> = { p2p: [], bounce: [] };
    const traced: Partial<Record<Mode, RunReport>> = {};
    let unit = 'MB/s';
    const t0 = performance.now();
    const pools: Record<Mode, DeviceWorkerPool> = { p2p: new DeviceWorkerPool(), bounce: new DeviceWorkerPool() };
    try {
      for (let k = 0; k < WARMUP_PAIRS; k++) for (const mode of pairOrder(k)) assertChecks(await runScenario(sc, { frames, mode, pool: pools[mode] }));
      for (let k = 0; k < MAX_PAIRS; k++) {
        const spent = performance.now() - t0;
        if (k >= repeats && spent + spent / (k + WARMUP_PAIRS) > BUDGET_MS[quick ? 'quick' : 'full']) break;
        for (const mode of pairOrder(k)) {
          const r = await runScenario(sc, { frames, mode, pool: pools[mode], trace: k === repeats - 1 ? obs.trace : undefined });
          assertChecks(r);
          const fg = figure(r);
          out[mode].push(fg.value);
          unit = fg.unit;
          if (k === repeats - 1) traced[mode] = r;
        }
      }
    } finally {
      await Promise.all([pools.p2p.close(), pools.bounce.close()]);
    }
    if (traced.p2p && traced.bounce) obs.pair?.(traced.p2p, traced.bounce);
    const size = frames === undefined ? 'shipped size' : `size ${frames}`;
    const runs = `${out.p2p.length} runs each mode after ${WARMUP_PAIRS} warm-up pair, alternating which goes first, on the mode's warm device workers`;
    rows.add(`scenario.${sc.name}.bounce`, unit, out.bounce, null, `${sc.name} in bounce mode, ${size}, ${runs}`);
    rows.add(`scenario.${sc.name}`, unit, out.p2p, `scenario.${sc.name}.bounce`, `${sc.name} in p2p mode, ${size}, ${runs}; ratio = p2p / bounce`);
    const pairs = out.p2p.map((x, k) => x / out.bounce[k]);
    rows.add(`scenario.${sc.name}.pairs`, 'x', pairs, null, `${sc.name}: p2p / bounce of the two runs of each pair (run back to back, so under the same load), ${size}`);
  }
}
