/** The `workload:` section of a camera-chain scenario. */
import { z } from 'zod';
import { deviceName, modeFields } from '../common_schema.js';

export const cameraChainSchema = z.strictObject({
  kind: z.literal('camera-chain'),
  ...modeFields('p2p'),
  camera: deviceName,
  corrector: deviceName,
  output: z.string().regex(/^[a-z][a-z0-9_-]*$/, 'expected the name of a process').describe('process whose memory receives the corrected frames'),
  final: deviceName.optional().describe('variant ([B]): the corrected frames land in this accelerator\'s memory instead of the process\'s RAM'),
  frames: z.number().int().min(1).max(100000).default(16),
  width: z.number().int().min(1).max(8192).default(1280),
  height: z.number().int().min(1).max(8192).default(720),
  buffers: z.number().int().min(1).max(16).default(3).describe('frame buffers between camera and colour correction'),
  queueDepth: z.number().int().min(2).max(1024).default(16),
  pipelines: z.number().int().min(1).max(128).default(1).describe('independent camera -> colour chains at once; with more than one, `camera: cam` names cam0, cam1, ... (likewise corrector, final)'),
  outputs: z.enum(['shared', 'per-pipeline']).default('shared').describe('with several pipelines: every output in the one process `output`, or pipeline i in process `<output><i>`'),
});

export type CameraChainWorkload = z.output<typeof cameraChainSchema>;
