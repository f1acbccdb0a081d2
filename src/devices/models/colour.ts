/**
 * The colour-correction engine's tables, derived from its scenario props
 * (matrix, per-channel gamma) for the device model: the definition is in
 * src/devices/camera_chain_abi.ts (ColourParams); the engine computes with
 * them in workers/colour_correction.ts. The LUT is rounded to integers
 * once, here, when the device is configured (DeviceKind.modelProps).
 */
import type { ColourParams } from '../camera_chain_abi.js';

/** Per-channel gamma curves: LUT[c * 256 + v] = round(255 * (v / 255) ^ (1 / gamma_c)). */
export function gammaLut(gamma: readonly [number, number, number]): number[] {
  const lut: number[] = [];
  for (const g of gamma) {
    for (let v = 0; v < 256; v++) lut.push(Math.round(255 * Math.pow(v / 255, 1 / g)));
  }
  return lut;
}

/** The engine's parameters from its validated props (matrix, per-channel gamma). */
export function colourParams(props: Readonly<Record<string, unknown>>): ColourParams {
  return { matrix: props.matrix as number[], lut: gammaLut(props.gamma as [number, number, number]) };
}
