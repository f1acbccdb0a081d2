/**
 * hmm-peer as a registered workload: the RFC's other path — process
 * memory migrated to the accelerator (HMM device-private), read by the
 * NIC peer to peer through hmmRangeFault, partly taken back by the CPU.
 */
import type { WorkloadDef } from '../workload.js';
import { runHmmPeer } from './run.js';
import type { HmmPeerWorkload } from './schema.js';
import { instanceNames, prefixProblems } from '../instances.js';

export const hmmPeerDef: WorkloadDef<HmmPeerWorkload> = {
  kind: 'hmm-peer',
  doc: 'RFC HMM path: anonymous memory migrated to an accelerator, read by a NIC at peer addresses, half migrated back by CPU touches',
  roles: (w) => [{ key: 'accelerator', device: w.accelerator, kinds: ['accelerator'] }, ...instanceNames(w.nic, w.importers).map((device) => ({ key: 'nic', device, kinds: ['nic'] }))],
  processes: (w) => [{ key: 'process', name: w.process }],
  validate: (w, devices) => prefixProblems('importers', w.importers, { nic: w.nic }, devices),
  p2pPairs: (w) => instanceNames(w.nic, w.importers).map((n): [string, string] => [w.accelerator, n]),
  units: { 'migrated to the accelerator': 'pages' },
  scale: (w, n) => ({ ...w, pages: Math.max(2, n) }),
  run: (ctx, w) => runHmmPeer(ctx, w),
};
