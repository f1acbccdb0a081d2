/**
 * Reads the per-device DMA counters (DeviceStats, written by each worker's
 * DMA engine) into the workload accounting. Read after the devices have
 * gone idle, so the non-atomic float64 counters are final.
 */
import type { Device } from '../devices/machine.js';
import type { Fabric, FabricFlow } from '../hw/fabric.js';
import { DeviceStats } from '../shm/device_ctl.js';
import type { StageTimes } from './workload.js';

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
