/**
 * scale.<workload>.<N> rows: a whole RFC workload with N instances at once
 * (scaledScenario: N camera chains, N accelerator -> NIC streams, ...) on a
 * generated DGX-style fabric, in p2p and in bounce mode, every instance's
 * data checks passing. Where bench/scale.ts measures the bare data path of
 * N streaming devices, these rows carry the workloads' compute, faults and
 * invalidations too.
 *
 *   scale.<w>.<N>             aggregate p2p throughput of the N instances
 *                             (payload / timed window), ratio to
 *                             memcpy.2threads
 *   scale.<w>.<N>.bounce      the same in bounce mode, ratio to
 *                             memcpy.2threads
 *   scale.<w>.<N>.pcie        modeled PCIe aggregate in p2p mode, ratio to
 *                             scale.<w>.<N>.pcie.bounce (the same streams
 *                             priced through system RAM)
 */
import { runScenario } from '../src/scenario/run.js';
import { scaledScenario, type ScaledKind } from '../src/scenario/scaled.js';
import { assertChecks, modeledThroughput, throughput } from '../src/trace/summary.js';
import type { Mode } from '../src/workloads/workload.js';
import { pairOrder } from './scenarios.js';
import type { RowSet } from './stats.js';

export interface ScaleWorkloadOptions {
  readonly kinds: readonly ScaledKind[];
  readonly counts: readonly number[];
  readonly repeats: number;
}

export async function scaleWorkloadRows(rows: RowSet, o: ScaleWorkloadOptions, log: (m: string) => void = () => undefined): Promise<void> {
  for (const kind of o.kinds) {
    for (const n of o.counts) {
      log(`bench: scale ${kind} x${n}`);
      const sc = scaledScenario(kind, n);
      const real: Record<Mode, number[]> = { p2p: [], bounce: [] };
      const modeled: Record<Mode, number[]> = { p2p: [], bounce: [] };
      for (let k = 0; k < o.repeats; k++) {
        for (const mode of pairOrder(k)) {
          const r = await runScenario(sc, { mode });
          assertChecks(r);
          real[mode].push(throughput(r) / 1e6);
          modeled[mode].push(modeledThroughput(r) / 1e6);
        }
      }
      const id = `scale.${kind}.${n}`;
      const what = `${n} ${kind} instance(s) at once on a generated fabric, aggregate`;
      rows.add(id, 'MB/s', real.p2p, 'memcpy.2threads', `${what}, p2p mode`);
      rows.add(`${id}.bounce`, 'MB/s', real.bounce, 'memcpy.2threads', `${what}, bounce mode`);
      rows.add(`${id}.pcie.bounce`, 'MB/s', modeled.bounce, null, `${what}: modeled PCIe, bounce through system RAM`);
      rows.add(`${id}.pcie`, 'MB/s', modeled.p2p, `${id}.pcie.bounce`, `${what}: modeled PCIe, p2p`);
    }
  }
}
