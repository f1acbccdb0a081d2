/**
 * scenario.<name> rows: every shipped scenario that has a workload (not the
 * topo-* examples) run in p2p mode and in bounce mode, `repeats` times
 * each, on a fresh machine each run. The figure is the run's throughput
 * (payload / timed window: data movement and device compute, not setup
 * nor verification); scenario.<name>.bounce is the baseline of
 * scenario.<name>, so its ratio is p2p / bounce. For accel-progress the
 * figure is the accelerator's progress while watched (iterations per
 * second), p2p / bounce. Every run's data checks must pass.
 *
 * Observed (peervma bench --trace / --report): the last repeat of each
 * scenario, both modes, is recorded by the trace recorder and handed to
 * `pair` (the HTML report's P2P vs bounce pairs); earlier repeats are not
 * traced, so the recorder's draining does not touch most timed runs.
 */
import { readdirSync } from 'node:fs';
import { InputError } from '../src/errors.js';
import { loadScenarioFile } from '../src/scenario/load.js';
import { runScenario, type RunReport, type RunTracer } from '../src/scenario/run.js';
import { assertChecks, throughput } from '../src/trace/summary.js';
import type { Mode } from '../src/workloads/workload.js';
import type { RowSet } from './stats.js';

/** Quick-suite sizes (frames / iterations) of the scenarios that are long at their shipped size. */
const QUICK_SIZE: Readonly<Record<string, number>> = { 'camera-farm': 4, 'camera-chain': 8, 'camera-chain-final': 8, 'camera-chain-iommu': 8, 'accel-progress': 500 };

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
  // Bad input (a --scenarios name), not a bug: exit 2 with the whole list, never cut as an internal error.
  if (unknown.length > 0) throw new InputError(`bench: no scenario with a workload named ${unknown.join(', ')} in ${dir} (have ${scs.map((sc) => sc.name).join(', ')})`);
  for (const sc of scs) {
    if (obs.names && !obs.names.includes(sc.name)) continue;
    obs.log?.(`bench: scenario ${sc.name}`);
    const frames = quick ? QUICK_SIZE[sc.name] : undefined;
    const out: Record<Mode, number[]> = { p2p: [], bounce: [] };
    const last: Partial<Record<Mode, RunReport>> = {};
    let unit = 'MB/s';
    for (let k = 0; k < repeats; k++) {
      for (const mode of ['p2p', 'bounce'] as const) {
        const r = await runScenario(sc, { frames, mode, trace: k === repeats - 1 ? obs.trace : undefined });
        assertChecks(r);
        const fg = figure(r);
        out[mode].push(fg.value);
        unit = fg.unit;
        last[mode] = r;
      }
    }
    if (last.p2p && last.bounce) obs.pair?.(last.p2p, last.bounce);
    const size = frames === undefined ? 'shipped size' : `size ${frames}`;
    rows.add(`scenario.${sc.name}.bounce`, unit, out.bounce, null, `${sc.name} in bounce mode, ${size}`);
    rows.add(`scenario.${sc.name}`, unit, out.p2p, `scenario.${sc.name}.bounce`, `${sc.name} in p2p mode, ${size}; ratio = p2p / bounce`);
  }
}
