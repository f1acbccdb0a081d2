/**
 * accel-nic-stream as a registered workload: the accelerator computes,
 * the NIC streams the results straight out of its memory (RFC workload 3).
 * With `streams: N` (and `nics: M`) one instance per NIC runs at once
 * (src/workloads/instances.ts), each NIC streaming from its accelerators
 * (nic_group.ts).
 */
import type { WorkloadDef } from '../workload.js';
import { runAccelNicStream } from './run.js';
import { runNicGroup } from './nic_group.js';
import type { AccelNicStreamWorkload } from './schema.js';
import { instanceName, prefixProblems, runInstances, type Instance } from '../instances.js';

/** One NIC and the accelerators that stream through it (accelerator i -> NIC i mod nics). */
interface NicGroup {
  readonly w: AccelNicStreamWorkload;
  readonly accelerators: string[];
}

function groups(w: AccelNicStreamWorkload): Instance<NicGroup>[] {
  const m = w.nics ?? w.streams;
  return Array.from({ length: m }, (_, g) => {
    const nic = instanceName(w.nic, g, m);
    const accelerators = Array.from({ length: w.streams }, (_, i) => i)
      .filter((i) => i % m === g)
      .map((i) => instanceName(w.accelerator, i, w.streams));
    return { label: `${accelerators.join(', ')} -> ${nic}`, w: { w: { ...w, accelerator: accelerators[0], nic, streams: 1, nics: undefined }, accelerators } };
  });
}

export const accelNicStreamDef: WorkloadDef<AccelNicStreamWorkload> = {
  kind: 'accel-nic-stream',
  doc: 'RFC workload (3): an accelerator computes, a NIC streams the results out of its memory peer to peer while the driver moves them',
  roles: (w) =>
    groups(w).flatMap(({ w: g }) => [
      ...g.accelerators.map((device) => ({ key: 'accelerator', device, kinds: ['accelerator'] })),
      { key: 'nic', device: g.w.nic, kinds: ['nic'] },
    ]),
  processes: (w) => [{ key: 'process', name: w.process }],
  validate: (w, devices) => [...prefixProblems('streams', w.streams, { accelerator: w.accelerator }, devices), ...prefixProblems('nics', w.nics ?? w.streams, { nic: w.nic }, devices)],
  p2pPairs: (w) => groups(w).flatMap(({ w: g }) => g.accelerators.map((a): [string, string] => [a, g.w.nic])),
  // The first NIC's SENDs: with several accelerators on it, it counts theirs too.
  progress: { device: (w) => groups(w)[0].w.w.nic, total: (w) => w.results * groups(w)[0].w.accelerators.length, unit: 'results' },
  units: { 'BAR slots recycled': 'slots', 'system RAM bytes for the stream': 'B' },
  scale: (w, n) => ({ ...w, results: n }),
  async run(ctx, w) {
    if (w.streams === 1) return runAccelNicStream(ctx, w);
    // No warm-up with several streams: one stream's warm-up would run inside another's window (they share the process, and a NIC in a group).
    const gs = groups({ ...w, warmUp: false });
    if (gs.length === 1) return runNicGroup(ctx, gs[0].w.w, gs[0].w.accelerators);
    return (await runInstances(ctx, gs, (c, g) => runNicGroup(c, g.w, g.accelerators))).merged;
  },
};
