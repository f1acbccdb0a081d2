/** The `workload:` section of RFC workload (1), a NIC driving an NVMe queue. */
import { z } from 'zod';
import { deviceName, modeFields } from '../common_schema.js';

export const nicNvmeSchema = z.strictObject({
  kind: z.literal('nic-nvme-queue'),
  ...modeFields('p2p'),
  nic: deviceName,
  nvme: deviceName,
  process: z.string().regex(/^[a-z][a-z0-9_-]*$/, 'expected the name of a process').describe('process whose address space maps the NVMe CMB queue (p2p) and to which the NIC is bound'),
  ios: z.number().int().min(1).max(10_000_000).default(2000).describe('client requests'),
  ioBytes: z.number().int().min(512).max(65536).default(4096).describe('bytes per request (whole NVMe blocks)'),
  blocks: z.number().int().min(1).max(1 << 20).default(256).describe('blocks of the NVMe namespace the client addresses'),
  writePct: z.number().int().min(0).max(100).default(50),
  queueDepth: z.number().int().min(1).max(255).default(16).describe('requests in flight'),
  queueEntries: z.number().int().min(2).max(4096).default(64).describe('entries of the NVMe queue pair'),
  pairs: z.number().int().min(1).max(64).default(1).describe('NIC -> NVMe pairs at once; with more than one, `nic: nic` and `nvme: nvme` name nic0/nvme0, nic1/nvme1, ...'),
}).refine((w) => w.queueDepth < w.queueEntries, { message: 'queueDepth must be smaller than queueEntries (a ring of n entries holds n - 1)', path: ['queueDepth'] });

export type NicNvmeWorkload = z.output<typeof nicNvmeSchema>;
