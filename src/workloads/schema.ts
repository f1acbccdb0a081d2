/**
 * The `workload:` key of a scenario: one schema per workload kind, joined
 * by `kind`. The workloads own it (src/scenario/schema.ts embeds it), so
 * the workload defs and the registry name their own input type without
 * reaching up into src/scenario/.
 */
import { z } from 'zod';
import { cameraChainSchema } from './camera_chain/schema.js';
import { nicNvmeSchema } from './nic_nvme/schema.js';
import { accelProgressSchema } from './accel_progress/schema.js';
import { accelNicStreamSchema } from './accel_nic_stream/schema.js';
import { hmmPeerSchema } from './hmm_peer/schema.js';

export const workloadSchema = z.discriminatedUnion('kind', [cameraChainSchema, accelProgressSchema, accelNicStreamSchema, hmmPeerSchema, nicNvmeSchema]);

export type Workload = z.output<typeof workloadSchema>;
