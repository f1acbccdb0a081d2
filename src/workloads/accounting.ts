/**
 * Reads the per-device DMA counters (DeviceStats, written by each worker's
 * DMA engine) into the workload accounting. Read after the devices have
 * gone idle, so the non-atomic float64 counters are final.
 */
import type { Device } from '../devices/machine.js';
import type { Fabric, FabricFlow } from '../hw/fabric.js';
import { DeviceStats } from '../shm/device_ctl.js';
import type { InvalidationStats, StageTimes, WorkloadContext } from './workload.js';

export function stageTimes(d: Device): StageTimes {
  const s = d.shm.stats;
  return {
    device: d.spec.name,
    commands: s[DeviceStats.commands],
    dmaMs: s[DeviceStats.dmaNs] / 1e6,
    computeMs: s[DeviceStats.computeNs] / 1e6,
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

/** p99 of a sample (nearest rank); 0 for an empty one. */
export function p99(xs: readonly number[]): number {
  if (xs.length === 0) return 0;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil(0.99 * s.length) - 1)];
}

/**
 * What the kernel saw of the importers `devices` during the run: the
 * invalidation batches sent to each and their ack latencies, and the
 * page requests (faults) and mid-run redos (refaults) each device counted
 * in its VA space. Call before the machine shuts down.
 */
export async function importerStats(ctx: WorkloadContext, devices: readonly string[]): Promise<{ invalidations: InvalidationStats; faults: number; refaults: number }> {
  let sent = 0;
  let acked = 0;
  const ackUs: number[] = [];
  for (const k of ctx.kernels) {
    for (const d of devices) {
      const st = k.invalidator(d).stats;
      sent += st.sent;
      acked += st.acked;
      ackUs.push(...st.ackUs);
    }
  }
  let faults = 0;
  let refaults = 0;
  for (const d of devices) {
    const va = await ctx.machine.race(ctx.machine.device(d).handle.call('deviceCmd', { op: 'va-counters' }));
    faults += (va.faults as number | undefined) ?? 0;
    refaults += (va.refaults as number | undefined) ?? 0;
  }
  return { invalidations: { sent, acked, maxAckUs: ackUs.length ? Math.max(...ackUs) : 0, p99AckUs: p99(ackUs) }, faults, refaults };
}
