/**
 * accel-nic-stream as a registered workload: the accelerator computes,
 * the NIC streams the results straight out of its memory (RFC workload 3).
 */
import type { WorkloadDef } from '../workload.js';
import { runAccelNicStream } from './run.js';
import type { AccelNicStreamWorkload } from './schema.js';

export const accelNicStreamDef: WorkloadDef<AccelNicStreamWorkload> = {
  kind: 'accel-nic-stream',
  doc: 'RFC workload (3): an accelerator computes, a NIC streams the results out of its memory peer to peer while the driver moves them',
  roles: (w) => [
    { key: 'accelerator', device: w.accelerator, kinds: ['accelerator'] },
    { key: 'nic', device: w.nic, kinds: ['nic'] },
  ],
  processes: (w) => [{ key: 'process', name: w.process }],
  p2pPairs: (w) => [[w.accelerator, w.nic]],
  progress: { device: (w) => w.nic, total: (w) => w.results, unit: 'results' },
  units: { 'BAR slots recycled': 'slots', 'system RAM bytes for the stream': 'B' },
  scale: (w, n) => ({ ...w, results: n }),
  run: (ctx, w) => runAccelNicStream(ctx, w),
};
