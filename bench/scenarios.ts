/**
 * scenario.<name> rows: every shipped scenario that has a workload (not the
 * topo-* examples) run in p2p mode and in bounce mode, `repeats` times
 * each, on a fresh machine each run. The figure is the run's throughput
 * (payload / timed window: data movement and device compute, not setup
 * nor verification); scenario.<name>.bounce is the baseline of
 * scenario.<name>, so its ratio is p2p / bounce. For accel-progress the
 * figure is the accelerator's progress while watched (iterations per
 * second), p2p / bounce. Every run's data checks must pass.
 */
import { readdirSync } from 'node:fs';
import { loadScenarioFile } from '../src/scenario/load.js';
import { runScenario, type RunReport } from '../src/scenario/run.js';
import { assertChecks, throughput } from '../src/trace/summary.js';
import type { Mode } from '../src/workloads/workload.js';
import type { RowSet } from './stats.js';

/** Quick-suite sizes (frames / iterations) of the scenarios that are long at their shipped size. */
const QUICK_SIZE: Readonly<Record<string, number>> = { 'camera-chain': 8, 'camera-chain-final': 8, 'camera-chain-iommu': 8, 'accel-progress': 500 };

function figure(r: RunReport): { value: number; unit: string } {
  if (r.workload === 'accel-progress') {
    const ms = Number(r.accounting.extra.watchedMs);
    return { value: Number(r.accounting.extra.iterations) / (ms / 1000), unit: 'iter/s' };
  }
  return { value: throughput(r) / 1e6, unit: 'MB/s' };
}

export async function scenarioRows(rows: RowSet, dir: string, repeats: number, quick: boolean): Promise<void> {
  const files = readdirSync(dir).filter((f) => f.endsWith('.yaml')).sort();
  for (const f of files) {
    const sc = await loadScenarioFile(`${dir}/${f}`);
    if (!sc.workload) continue;
    const frames = quick ? QUICK_SIZE[sc.name] : undefined;
    const out: Record<Mode, number[]> = { p2p: [], bounce: [] };
    let unit = 'MB/s';
    for (let k = 0; k < repeats; k++) {
      for (const mode of ['p2p', 'bounce'] as const) {
        const r = await runScenario(sc, { frames, mode });
        assertChecks(r);
        const fg = figure(r);
        out[mode].push(fg.value);
        unit = fg.unit;
      }
    }
    const size = frames === undefined ? 'shipped size' : `size ${frames}`;
    rows.add(`scenario.${sc.name}.bounce`, unit, out.bounce, null, `${sc.name} in bounce mode, ${size}`);
    rows.add(`scenario.${sc.name}`, unit, out.p2p, `scenario.${sc.name}.bounce`, `${sc.name} in p2p mode, ${size}; ratio = p2p / bounce`);
  }
}
