/**
 * The checker's colour correction (definition: ColourParams in
 * src/devices/camera_chain_abi.ts): the plain formula, one byte at a time,
 * with its own LUT from the props. The engine (workers/colour_correction.ts)
 * computes the same function its own way (product tables, 32-bit words),
 * so a bug in either shows as a mismatch.
 */
import { COLOUR_Q8_ONE, type ColourParams } from '../../devices/camera_chain_abi.js';

/** The parameters the checker expects the engine to apply, from the colour engine's validated props. */
export function colourReferenceParams(props: Readonly<Record<string, unknown>>): ColourParams {
  const gamma = props.gamma as readonly number[];
  const lut = gamma.flatMap((g) => Array.from({ length: 256 }, (_, v) => Math.round(255 * (v / 255) ** (1 / g))));
  return { matrix: [...(props.matrix as readonly number[])], lut };
}

export function colourReference(input: Uint8Array, output: Uint8Array, p: ColourParams): void {
  const m = Int32Array.from(p.matrix);
  const lut = Uint8Array.from(p.lut);
  for (let i = 0; i < input.length; i += 4) {
    for (let c = 0; c < 3; c++) {
      const acc = m[c * 3] * input[i] + m[c * 3 + 1] * input[i + 1] + m[c * 3 + 2] * input[i + 2];
      // The definition's shift, verbatim (an int32 shift: a float floor-divide here cost 2.5x).
      const v = Math.min(255, Math.max(0, (acc + COLOUR_Q8_ONE / 2) >> 8));
      output[i + c] = lut[c * 256 + v];
    }
    output[i + 3] = input[i + 3];
  }
}
