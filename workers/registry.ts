/**
 * Device kinds the hardware side can realise, by scenario `kind` name.
 * Policy as data: adding a kind is one row here and one in
 * src/devices/device_kinds.ts (its properties and memory needs).
 */
import type { DeviceFactory } from './runtime/device_model.js';
import { createCamera } from './camera.js';
import { createColourCorrection } from './colour_correction.js';
import { createFaulty } from './x_faulty.js';
import { createMirror } from './mirror.js';
import { createAccelerator } from './accelerator.js';
import { createNic } from './nic.js';
import { createNvme } from './nvme.js';
import { createStress } from './x_stress.js';

export const deviceFactories: Readonly<Record<string, DeviceFactory>> = {
  camera: createCamera,
  'colour-correction': createColourCorrection,
  'x-faulty': createFaulty,
  mirror: createMirror,
  accelerator: createAccelerator,
  nic: createNic,
  nvme: createNvme,
  'x-stress': createStress,
};
