/** The `workload:` section of an accel-progress scenario (RFC workload 2, use case [B]). */
import { z } from 'zod';
import { deviceName, modeFields } from '../common_schema.js';
import { sizeSchema } from '../../common/size.js';

export const accelProgressSchema = z.strictObject({
  kind: z.literal('accel-progress'),
  ...modeFields('p2p'),
  accelerator: deviceName,
  nic: deviceName,
  process: z.string().regex(/^[a-z][a-z0-9_-]*$/, 'expected the name of a process').describe('process whose address space holds the progress mapping and the sample log'),
  bufferBytes: sizeSchema.refine((n) => n > 0 && n % 4096 === 0, { message: 'must be a positive multiple of the 4096-byte page' }).default(256 * 1024).describe('the buffer the accelerator iterates over, in its memory'),
  iterations: z.number().int().min(1).max(10_000_000).default(1500),
  publishEvery: z.number().int().min(1).default(1).describe('iterations between two progress record updates'),
  pollUs: z.number().int().min(0).max(1_000_000).default(20).describe('NIC MONITOR poll period'),
  maxSamples: z.number().int().min(1).max(1_000_000).default(100_000),
});

export type AccelProgressWorkload = z.output<typeof accelProgressSchema>;
