/** The `workload:` section of an accel-nic-stream scenario (RFC workload 3, use case [B]). */
import { z } from 'zod';
import { deviceName, modeFields } from '../common_schema.js';
import { sizeSchema } from '../../common/size.js';

export const accelNicStreamSchema = z.strictObject({
  kind: z.literal('accel-nic-stream'),
  ...modeFields('p2p'),
  accelerator: deviceName,
  nic: deviceName,
  process: z.string().regex(/^[a-z][a-z0-9_-]*$/, 'expected the name of a process').describe('process whose address space maps the result buffers'),
  resultBytes: sizeSchema.refine((n) => n > 0 && n % 4096 === 0, { message: 'must be a positive multiple of the 4096-byte page' }).default(2 * 1024 * 1024).describe('bytes of one result'),
  results: z.number().int().min(1).max(100_000).default(16).describe('results computed and streamed'),
  buffers: z.number().int().min(1).max(16).default(2).describe('result buffers in accelerator memory (and RAM slots in bounce mode)'),
  iterations: z.number().int().min(0).max(1000).default(1).describe('kernel iterations per result (compute cost)'),
  revokes: z.number().int().min(0).max(1000).default(4).describe('p2p: times the driver moves a result buffer while the NIC streams it (seeded results and delays)'),
  evict: z
    .enum(['move', 'revoke'])
    .default('move')
    .describe("p2p: what each planned eviction does — 'move': the RFC's invalidate, move the data, remap (the NIC refaults and goes on); 'revoke': dma-buf/VFIO-style revocation (the NIC is invalidated, its refault fails ENODEV, the driver restores access and sends the result again)"),
  warmUp: z.boolean().default(true).describe("untimed, before the window: this mode's own path, 16 results of the result size through min(2, buffers) buffers of its own (device and kernel code compiles there, not in the window); not counted; single-stream runs only (streams: 1)"),
  queueDepth: z.number().int().min(2).max(1024).default(8),
  streams: z.number().int().min(1).max(64).default(1).describe('accelerators streaming at once; with more than one, `accelerator: acc` names acc0, acc1, ...'),
  nics: z.number().int().min(1).max(64).optional().describe('NICs (default: one per accelerator); accelerator i streams through NIC i mod nics; with more than one, `nic: nic` names nic0, nic1, ...'),
}).refine((w) => (w.nics ?? w.streams) <= w.streams, { message: 'at most one NIC per accelerator stream (nics <= streams)', path: ['nics'] });

export type AccelNicStreamWorkload = z.output<typeof accelNicStreamSchema>;
