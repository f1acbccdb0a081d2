/**
 * Workload kinds, by scenario `workload.kind`. Policy as data: a new
 * workload is its schema (joined into src/scenario/schema.ts) and one row
 * here.
 */
import type { Workload } from './schema.js';

export type { Role, WorkloadDef } from './workload.js';
import type { WorkloadDef } from './workload.js';
import { cameraChainDef } from './camera_chain/def.js';
import { nicNvmeDef } from './nic_nvme/def.js';
import { accelProgressDef } from './accel_progress/def.js';
import { accelNicStreamDef } from './accel_nic_stream/def.js';
import { hmmPeerDef } from './hmm_peer/def.js';

type Defs = { readonly [K in Workload['kind']]: WorkloadDef<Extract<Workload, { kind: K }>> };

export const workloadDefs: Defs = {
  'camera-chain': cameraChainDef,
  'nic-nvme-queue': nicNvmeDef,
  'accel-progress': accelProgressDef,
  'accel-nic-stream': accelNicStreamDef,
  'hmm-peer': hmmPeerDef,
};

export function workloadDef(w: Workload): WorkloadDef {
  return workloadDefs[w.kind] as unknown as WorkloadDef;
}
