/**
 * accel-progress as a registered workload: the accelerator computes, the
 * NIC watches its progress record (RFC workload 2, use case [B]).
 */
import type { WorkloadDef } from '../workload.js';
import { runAccelProgress } from './run.js';
import type { AccelProgressWorkload } from './schema.js';

export const accelProgressDef: WorkloadDef<AccelProgressWorkload> = {
  kind: 'accel-progress',
  doc: 'RFC workload (2): an accelerator computes, a NIC watches its progress record through a P2P read mapping',
  roles: (w) => [
    { key: 'accelerator', device: w.accelerator, kinds: ['accelerator'] },
    { key: 'nic', device: w.nic, kinds: ['nic'] },
  ],
  processes: (w) => [{ key: 'process', name: w.process }],
  p2pPairs: (w) => [[w.accelerator, w.nic]],
  units: { iterations: 'iterations', 'samples (monitoring packets)': 'packets', 'torn reads retried': 'reads', 'progress updates': 'updates' },
  scale: (w, n) => ({ ...w, iterations: n }),
  run: (ctx, w) => runAccelProgress(ctx, w),
};
