/**
 * A snapshot of the cumulative counters a workload's Accounting reads
 * (device stage times, VA counters, invalidation batches and acks, host
 * commands), and those counters relative to it: a workload that runs an
 * untimed warm-up before its window (hmm-peer, accel-nic-stream) takes a
 * Baseline after it, so nothing of the warm-up reaches its Accounting.
 */
import type { Device, Machine } from '../devices/machine.js';
import type { Kernel } from '../kernel/kernel.js';
import { stageTimes, sumInvalidations, vaCounters, type InvalidatorMark, type VaCounters } from './accounting.js';
import type { InvalidationStats, StageTimes } from './workload.js';

/** The counters after the warm-up. */
export interface Baseline {
  readonly stages: ReadonlyMap<string, StageTimes>;
  readonly va: ReadonlyMap<string, VaCounters>;
  readonly inv: ReadonlyMap<string, InvalidatorMark>;
  readonly submitted: number;
}

/** No baseline: the counters since the run began (a run without a warm-up). */
export const NO_BASELINE: Baseline = { stages: new Map(), va: new Map(), inv: new Map(), submitted: 0 };

/** Snapshot of every counter the run's accounting reads, for `devs` (importers and the accelerator). */
export async function baseline(machine: Machine, kernel: Kernel, devs: readonly Device[], submitted: number): Promise<Baseline> {
  const stages = new Map<string, StageTimes>();
  const va = new Map<string, VaCounters>();
  const inv = new Map<string, InvalidatorMark>();
  for (const d of devs) {
    const name = d.spec.name;
    stages.set(name, stageTimes(d));
    va.set(name, await vaCounters(machine, d));
    inv.set(name, invalidatorMark(kernel, name));
  }
  return { stages, va, inv, submitted };
}

/** Device `name`'s invalidator counters now (batches sent and acked, acks recorded). */
export function invalidatorMark(kernel: Kernel, name: string): InvalidatorMark {
  const st = kernel.invalidator(name).stats;
  return { sent: st.sent, acked: st.acked, acks: st.ackUs.length };
}

/** `now` minus `old`, field by field over the numeric fields but those in `keep` (taken from `now`: levels, not counts). */
function minus<T extends object>(now: T, old: T, keep: readonly (keyof T)[] = []): T {
  const out = { ...now };
  for (const k of Object.keys(now) as (keyof T)[]) {
    const v = now[k];
    if (typeof v === 'number' && !keep.includes(k)) (out[k] as number) = v - (old[k] as number);
  }
  return out;
}

/** stageTimes(d) since the baseline. */
export function stageSince(d: Device, b: Baseline): StageTimes {
  const now = stageTimes(d);
  const o = b.stages.get(d.spec.name);
  return o ? minus(now, o) : now;
}

/** vaCounters(d) since the baseline (`tlb`, the entries held now, is a level). */
export async function vaSince(machine: Machine, d: Device, b: Baseline): Promise<VaCounters> {
  const now = await vaCounters(machine, d);
  const o = b.va.get(d.spec.name);
  return o ? minus(now, o, ['tlb']) : now;
}

/** invalidationStats(kernel, devices) since the baseline: batches and the ack latencies of the batches after it. */
export function invalidationSince(kernel: Kernel, devices: readonly string[], b: Baseline): InvalidationStats {
  return sumInvalidations(devices.map((d) => ({ stats: kernel.invalidator(d).stats, since: b.inv.get(d) })));
}
