/**
 * Workload kinds, by scenario `workload.kind`. Policy as data: a new
 * workload is its schema (joined into src/scenario/schema.ts) and one row
 * here.
 */
import type { Workload } from '../scenario/schema.js';
import type { Accounting, WorkloadContext } from './workload.js';
import { cameraChainDef } from './camera_chain/def.js';
import { nicNvmeDef } from './nic_nvme/def.js';
import { accelProgressDef } from './accel_progress/def.js';
import { accelNicStreamDef } from './accel_nic_stream/def.js';
import { hmmPeerDef } from './hmm_peer/def.js';

export interface Role {
  /** Key under `workload:` naming the device. */
  readonly key: string;
  readonly device: string;
  /** Device kinds that can play the role. */
  readonly kinds: readonly string[];
}

export interface WorkloadDef<W extends Workload = Workload> {
  readonly kind: W['kind'];
  readonly doc: string;
  roles(w: W): Role[];
  /** Processes the workload uses, by the key naming them. */
  processes(w: W): { key: string; name: string }[];
  /** (provider, client) pairs that must be able to talk directly in p2p mode. */
  p2pPairs(w: W): [provider: string, client: string][];
  /** The workload with its size knob (frames, requests, iterations) set to n (--frames). */
  scale(w: W, n: number): W;
  run(ctx: WorkloadContext, w: W): Promise<Accounting>;
}

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
