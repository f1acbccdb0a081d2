/**
 * accel-nic-stream as a registered workload: the accelerator computes,
 * the NIC streams the results straight out of its memory (RFC workload 3).
 */
import type { WorkloadDef } from '../workload.js';
import { runAccelNicStream } from './run.js';
import type { AccelNicStreamWorkload } from './schema.js';
import { instanceName, runInstances, type Instance } from '../instances.js';

/** Stream i's own workload (`acc` -> acc<i>, `nic` -> nic<i>; one process for all). */
function stream(w: AccelNicStreamWorkload, i: number): AccelNicStreamWorkload {
  return { ...w, accelerator: instanceName(w.accelerator, i, w.streams), nic: instanceName(w.nic, i, w.streams), streams: 1 };
}

function streams(w: AccelNicStreamWorkload): Instance<AccelNicStreamWorkload>[] {
  return Array.from({ length: w.streams }, (_, i) => {
    const s = stream(w, i);
    return { label: `${s.accelerator} -> ${s.nic}`, w: s };
  });
}

export const accelNicStreamDef: WorkloadDef<AccelNicStreamWorkload> = {
  kind: 'accel-nic-stream',
  doc: 'RFC workload (3): an accelerator computes, a NIC streams the results out of its memory peer to peer while the driver moves them',
  roles: (w) =>
    streams(w).flatMap(({ w: s }) => [
      { key: 'accelerator', device: s.accelerator, kinds: ['accelerator'] },
      { key: 'nic', device: s.nic, kinds: ['nic'] },
    ]),
  processes: (w) => [{ key: 'process', name: w.process }],
  p2pPairs: (w) => streams(w).map(({ w: s }): [string, string] => [s.accelerator, s.nic]),
  progress: { device: (w) => stream(w, 0).nic, total: (w) => w.results, unit: 'results' },
  units: { 'BAR slots recycled': 'slots', 'system RAM bytes for the stream': 'B' },
  scale: (w, n) => ({ ...w, results: n }),
  run: async (ctx, w) => (w.streams === 1 ? runAccelNicStream(ctx, w) : (await runInstances(ctx, streams(w), runAccelNicStream)).merged),
};
