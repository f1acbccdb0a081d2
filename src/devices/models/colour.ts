/**
 * Colour correction of the camera chain: a 3x3 matrix in Q8 fixed point
 * followed by a per-channel gamma lookup table, in integer arithmetic;
 * alpha passes through.
 *
 *   acc_c = sum_j M[c][j] * in_j          (M in Q8: 256 = 1.0)
 *   v_c   = clamp((acc_c + 128) >> 8, 0, 255)
 *   out_c = LUT[c][v_c]
 *
 * `colourReference` is the CPU reference the checker trusts: the plain
 * formula, one byte at a time. The device (workers/colour_correction.ts)
 * computes the same function its own way (product tables, 32-bit words),
 * so a bug in either shows as a mismatch.
 */

export interface ColourParams {
  /** Row-major 3x3 matrix, Q8. */
  readonly matrix: readonly number[];
  /** 3 x 256 entries: the LUT of R, then G, then B. */
  readonly lut: readonly number[];
}

/** A mild warm correction; rows sum to 256 so grey stays grey before gamma. */
export const DEFAULT_MATRIX: readonly number[] = [300, -30, -14, -20, 290, -14, -10, -40, 306];

/** Per-channel gamma curves, rounded to integers once here so both sides use the same table. */
export function gammaLut(gamma: readonly [number, number, number]): number[] {
  const lut: number[] = [];
  for (const g of gamma) {
    for (let v = 0; v < 256; v++) lut.push(Math.round(255 * Math.pow(v / 255, 1 / g)));
  }
  return lut;
}

/** The engine's parameters from its scenario props (matrix, per-channel gamma): the LUT is computed once, here. */
export function colourParams(props: Readonly<Record<string, unknown>>): ColourParams {
  return { matrix: props.matrix as number[], lut: gammaLut(props.gamma as [number, number, number]) };
}

export function colourReference(input: Uint8Array, output: Uint8Array, p: ColourParams): void {
  const m = Int32Array.from(p.matrix);
  const lut = Uint8Array.from(p.lut);
  for (let i = 0; i < input.length; i += 4) {
    for (let c = 0; c < 3; c++) {
      const acc = m[c * 3] * input[i] + m[c * 3 + 1] * input[i + 1] + m[c * 3 + 2] * input[i + 2];
      const v = Math.min(255, Math.max(0, (acc + 128) >> 8));
      output[i + c] = lut[c * 256 + v];
    }
    output[i + 3] = input[i + 3];
  }
}
