/**
 * Reads the per-device DMA counters (DeviceStats, written by each worker's
 * DMA engine) into the workload accounting. Read after the devices have
 * gone idle, so the non-atomic float64 counters are final.
 */
import type { Device, Machine } from '../devices/machine.js';
import type { VaCounters as DeviceVaCounters } from '../devices/protocol.js';
import { deviceQuery } from './command_runner.js';
import type { Kernel } from '../kernel/kernel.js';
import type { Fabric, FabricFlow } from '../hw/fabric.js';
import { DeviceStats } from '../shm/device_ctl.js';
import type { InvalidationStats, StageTimes, WorkloadContext } from './workload.js';

/** CPU milliseconds every thread of the process used since `since` (a process.cpuUsage() taken at the window's start): Accounting.cpuMs. */
export function processCpuMsSince(since: NodeJS.CpuUsage): number {
  const c = process.cpuUsage(since);
  return (c.user + c.system) / 1000;
}

export function stageTimes(d: Device): StageTimes {
  const s = d.shm.stats;
  return {
    device: d.spec.name,
    commands: s[DeviceStats.commands],
    dmaMs: s[DeviceStats.dmaNs] / 1e6,
    computeMs: s[DeviceStats.computeNs] / 1e6,
    faultWaitMs: s[DeviceStats.faultWaitNs] / 1e6,
    mapMs: s[DeviceStats.mapNs] / 1e6,
    bytesFromRam: s[DeviceStats.bytesFromRam],
    bytesToRam: s[DeviceStats.bytesToRam],
    bytesFromPeer: s[DeviceStats.bytesFromPeer],
    bytesToPeer: s[DeviceStats.bytesToPeer],
  };
}

export function trafficTotals(devs: readonly StageTimes[]): { ramBytes: number; p2pBytes: number } {
  let ramBytes = 0;
  let p2pBytes = 0;
  for (const d of devs) {
    ramBytes += d.bytesFromRam + d.bytesToRam;
    p2pBytes += d.bytesFromPeer + d.bytesToPeer;
  }
  return { ramBytes, p2pBytes };
}

/** Modeled completion time (virtual seconds) of a workload's transfers, all started at t = 0. */
export function modeledSeconds(fabric: Fabric, flows: FabricFlow[]): number {
  if (flows.length === 0) return 0;
  const r = fabric.modelFlows(flows);
  return r.makespan;
}

/** Mean of a non-empty sample. */
export function mean(xs: readonly number[]): number {
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}

/** p99 of a sample (nearest rank); 0 for an empty one. */
export function p99(xs: readonly number[]): number {
  if (xs.length === 0) return 0;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil(0.99 * s.length) - 1)];
}

/** Invalidation batches the kernels sent to `devices` and got acked, with the ack latencies. */
export function invalidationStats(kernels: readonly Kernel[], devices: readonly string[]): InvalidationStats {
  return sumInvalidations(kernels.flatMap((k) => devices.map((d) => ({ stats: k.invalidator(d).stats }))));
}

/** An invalidator's counters at a snapshot (counter_baseline.ts): batches sent and acked, acks recorded. */
export interface InvalidatorMark {
  readonly sent: number;
  readonly acked: number;
  readonly acks: number;
}

/** One invalidator's counters (InvalidatorStats) and, when counting from a snapshot, their values then. */
export interface InvalidatorSample {
  readonly stats: { readonly sent: number; readonly acked: number; readonly ackUs: readonly number[] };
  readonly since?: InvalidatorMark;
}

/** The batches sent and acked and the ack latencies, summed over invalidators (each from its `since`, when given). */
export function sumInvalidations(samples: readonly InvalidatorSample[]): InvalidationStats {
  let sent = 0;
  let acked = 0;
  const ackUs: number[] = [];
  for (const { stats: st, since: o = { sent: 0, acked: 0, acks: 0 } } of samples) {
    sent += st.sent - o.sent;
    acked += st.acked - o.acked;
    ackUs.push(...st.ackUs.slice(o.acks));
  }
  return { sent, acked, maxAckUs: ackUs.reduce((m, x) => Math.max(m, x), 0), p99AckUs: p99(ackUs), ackWaitMs: ackUs.reduce((t, x) => t + x, 0) / 1000 };
}

/** Device-TLB counters of a device bound to a process (workers/runtime/va_space.ts, 'va-counters'); zeros when unbound. */
export interface VaCounters extends Omit<DeviceVaCounters, 'iotlb'> {
  /** Pages faulted in again after an invalidation dropped them (DeviceStats.pagesRefaulted). */
  readonly pagesRefaulted: number;
}

export async function vaCounters(machine: Machine, dev: Device): Promise<VaCounters> {
  const c = await deviceQuery(machine, dev, { op: 'va-counters' });
  return { faults: c.faults ?? 0, pagesFaulted: c.pagesFaulted ?? 0, retries: c.retries ?? 0, refaults: c.refaults ?? 0, prefetchHits: c.prefetchHits ?? 0, pagesRefaulted: dev.shm.stats[DeviceStats.pagesRefaulted], tlb: c.tlb ?? 0 };
}

/**
 * What the kernel saw of the importers `devices` during the run: the
 * invalidation batches sent to each and their ack latencies, the page
 * requests (faults) each device sent, the pages it faulted in again after
 * an invalidation dropped them (refaults), and the runs it redid because
 * an invalidation hit them mid-transfer. Call before the machine shuts down.
 */
export async function importerStats(ctx: WorkloadContext, devices: readonly string[]): Promise<{ invalidations: InvalidationStats; faults: number; refaults: number; runsRedone: number }> {
  let faults = 0;
  let refaults = 0;
  let runsRedone = 0;
  for (const d of devices) {
    const va = await vaCounters(ctx.machine, ctx.machine.device(d));
    faults += va.faults;
    refaults += va.pagesRefaulted;
    runsRedone += va.refaults;
  }
  return { invalidations: invalidationStats(ctx.kernels, devices), faults, refaults, runsRedone };
}
