/**
 * The scenario file format, as one zod schema: what a YAML file under
 * scenarios/ may say, with defaults. docs/scenario-format.md describes it
 * for people; this file is the authority. Unknown keys are errors (a typo
 * must not silently fall back to a default).
 */
import { z } from 'zod';
import { PAGE_SIZE } from '../shm/constants.js';
import { formatBytes, sizeSchema } from '../common/size.js';
import { MAX_DEVICE_WORKERS, MAX_MEMORY_BYTES } from '../devices/limits.js';
import { TopologySchema } from '../hw/topology_schema.js';
import { workloadSchema } from '../workloads/schema.js';

const MiB = 1024 * 1024;
const pageSize = sizeSchema
  .refine((n) => n % PAGE_SIZE === 0, { message: `must be a multiple of the ${PAGE_SIZE}-byte page` })
  .refine((n) => n <= MAX_MEMORY_BYTES, { error: (iss) => `that is ${formatBytes(iss.input as number)}; at most ${MAX_MEMORY_BYTES / MiB} MiB: each memory is one SharedArrayBuffer, indexed by 32-bit typed arrays` });
const name = z.string().regex(/^[a-z][a-z0-9_-]*$/, 'expected a name of lower-case letters, digits, - and _, starting with a letter');

export const deviceSchema = z.strictObject({
  name,
  kind: z.string(),
  memory: pageSize.default(0).describe('local device memory'),
  bar: pageSize.default(0).describe('BAR2 memory window (may be smaller than memory)'),
  props: z.record(z.string(), z.unknown()).default({}),
  'x-ignore-invalidations': z.boolean().default(false).describe('test knob: the device acks invalidations but keeps using its translations (a rogue device)'),
});

export const processSchema = z.strictObject({
  name,
});

export const scenarioSchema = z.strictObject({
  name,
  description: z.string().default(''),
  seed: z.number().int().min(0).max(0xffffffff).default(1),
  machine: z
    .strictObject({
      ram: pageSize.refine((n) => n >= PAGE_SIZE, { message: `system RAM needs at least one ${PAGE_SIZE}-byte page` }).default(64 * 1024 * 1024),
      timeoutMs: z.number().int().min(100).max(600000).default(10000).describe('deadline of every wait on a device worker'),
      runTokens: z
        .union([z.enum(['auto', 'off']), z.number().int().min(0).max(1024)])
        .default('auto')
        .describe('cooperative run tokens (src/devices/run_tokens.ts): auto = one per core when devices outnumber cores; off; or a count'),
    })
    .prefault({}),
  // The count is also checked before the schema walks the list (load.ts: checkShape).
  // How many this host can run follows from its memory (checkLimits, before the machine starts).
  devices: z.array(deviceSchema).min(1).max(MAX_DEVICE_WORKERS, `at most ${MAX_DEVICE_WORKERS} devices in a scenario file`),
  processes: z.array(processSchema).default([]),
  workload: workloadSchema.optional().describe('absent: a topology-only scenario, for `peervma topo`'),
  topology: TopologySchema.optional().describe('PCIe tree; absent: one root complex, one switch, every device below it'),
});

export type ScenarioInput = z.input<typeof scenarioSchema>;
export type Scenario = z.output<typeof scenarioSchema>;
export type DeviceEntry = z.output<typeof deviceSchema>;
export type { Workload } from '../workloads/schema.js';
export type { CameraChainWorkload } from '../workloads/camera_chain/schema.js';
