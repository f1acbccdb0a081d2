/**
 * Device kinds and their properties, as a table with defaults (QEMU's
 * DEFINE_PROP_*). The scenario loader validates a device's `props` against
 * its kind's row; the worker side has the matching model in
 * workers/registry.ts. Test-only kinds and knobs carry an `x-` prefix.
 */
import { z } from 'zod';
import { DEFAULT_MATRIX } from './camera_chain_abi.js';
import { colourParams } from './models/colour.js';

export interface DeviceKind {
  readonly doc: string;
  /**
   * The model's own working memory (line buffers, scratch), at the start
   * of its local memory: the scenario must give at least this much, and
   * Machine reserves it so no driver allocates those pages.
   */
  readonly minMemBytes: number;
  /** Local memory is a shared WebAssembly.Memory: the model's WebAssembly kernels compute in it in place (src/shm/phys_mem.ts). */
  readonly wasmMemory?: boolean;
  /** Properties accepted under `props:`, with their defaults. */
  readonly props: z.ZodObject;
  /** What the worker model gets, derived from the validated props (default: the props themselves). */
  readonly modelProps?: (props: Readonly<Record<string, unknown>>) => Readonly<Record<string, unknown>>;
}

const KiB = 1024;

export const deviceKinds: Readonly<Record<string, DeviceKind>> = {
  camera: {
    doc: 'image sensor + DMA: renders the seeded pattern and writes frames to a bus address or, bound to a process, to a virtual address',
    minMemBytes: 132 * KiB,
    props: z.strictObject({}),
  },
  'colour-correction': {
    doc: '3x3 Q8 colour matrix + per-channel gamma LUT, streaming through 64 KiB line buffers',
    minMemBytes: 128 * KiB,
    props: z.strictObject({
      matrix: z.array(z.number().int().min(-4096).max(4096)).length(9).default([...DEFAULT_MATRIX]),
      gamma: z.tuple([z.number().positive(), z.number().positive(), z.number().positive()]).default([2.2, 2.2, 2.2]),
      'x-corrupt-frame': z.number().int().min(0).optional().describe('test knob: flip one output byte of this frame'),
      'x-corrupt-offset': z.number().int().min(0).default(0).describe('test knob: byte offset flipped in x-corrupt-frame'),
    }),
    modelProps: (p) => ({ ...p, ...colourParams(p) }),
  },
  accelerator: {
    doc: 'compute device: iterative integer kernel over buffers in its memory, publishing a seqcount progress record; copies and transforms by process VA (src/devices/accelerator_abi.ts)',
    minMemBytes: 0, // keeps no memory of its own: the driver allocates every buffer and record
    wasmMemory: true,
    props: z.strictObject({
      'x-corrupt-iteration': z.number().int().min(1).optional().describe('test knob: after this iteration of every COMPUTE (and every TRANSFORM), flip bit 0 of one buffer word'),
      'x-corrupt-word': z.number().int().min(0).default(0).describe('test knob: the word x-corrupt-iteration flips'),
    }),
  },
  mirror: {
    doc: 'HMM mirror test device (lib/test_hmm.c dmirror): READ/WRITE a process range through its own device TLB; device-private memory for migration',
    minMemBytes: 64 * KiB,
    props: z.strictObject({}),
  },
  nic: {
    doc: 'network card: SEND process memory to a checksumming sink, MONITOR a progress record by seqcount, drive a peer NVMe queue (src/devices/nic_abi.ts); DMA by process VA',
    minMemBytes: 256 * KiB,
    wasmMemory: true,
    props: z.strictObject({}),
  },
  nvme: {
    doc: 'NVMe controller: READ/WRITE of blocks kept in its own memory; host queues in RAM and CMB queues in its BAR that a peer drives, MSI to the peer (src/devices/nvme_abi.ts)',
    minMemBytes: 4 * KiB,
    props: z.strictObject({
      blockBytes: z.number().int().min(512).max(65536).refine((n) => n % 512 === 0, { message: 'must be a multiple of 512' }).default(4096),
      'x-corrupt-read': z.number().int().min(0).optional().describe('test knob: flip one byte of the data this READ (0-based count) returns'),
      'x-corrupt-offset': z.number().int().min(0).default(0).describe('test knob: byte offset flipped in x-corrupt-read'),
    }),
  },
  'x-stress': {
    doc: 'stress importer (peervma stress): streams self-describing reads and writes over the job table by process VA and judges every page it reads back',
    minMemBytes: 64 * KiB,
    props: z.strictObject({}),
  },
  'x-faulty': {
    doc: 'test device that throws, hangs or exits, at start or on its first command',
    minMemBytes: 0,
    props: z.strictObject({
      fault: z.enum(['throw', 'hang', 'exit']),
      when: z.enum(['start', 'command']).default('command'),
    }),
  },
};
