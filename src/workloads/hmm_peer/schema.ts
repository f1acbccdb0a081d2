/** The `workload:` section of an hmm-peer scenario (the RFC's HMM device-memory path). */
import { z } from 'zod';
import { deviceName, modeFields } from '../common_schema.js';

export const hmmPeerSchema = z.strictObject({
  kind: z.literal('hmm-peer'),
  ...modeFields('p2p'),
  accelerator: deviceName,
  nic: deviceName,
  process: z.string().regex(/^[a-z][a-z0-9_-]*$/, 'expected the name of a process').describe('process whose anonymous buffer migrates to the accelerator'),
  pages: z.number().int().min(2).max(262_144).default(1024).describe('4 KiB pages of the anonymous buffer'),
  chunkPages: z.number().int().min(1).max(262_144).default(256).describe('pages migrated and TRANSFORMed per step: the kernel migrates the next chunk while the accelerator transforms this one'),
  stagePages: z.number().int().min(1).max(256).default(16).describe('accelerator staging area for TRANSFORM'),
  warmUp: z.boolean().default(true).describe("untimed, before the window: this mode's own path once on a 64-page buffer of its own (fresh device workers compile their code there, not in the window); not counted"),
  importers: z.number().int().min(1).max(128).default(1).describe('NICs reading the one migrated buffer at once; with more than one, `nic: nic` names nic0, nic1, ...'),
});

export type HmmPeerWorkload = z.output<typeof hmmPeerSchema>;
