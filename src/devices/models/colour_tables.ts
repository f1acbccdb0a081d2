/**
 * The colour-correction engine's arithmetic (workers/colour_correction.ts):
 * the function defined by ColourParams in src/devices/camera_chain_abi.ts,
 * computed through per-channel tables built once when the device is
 * configured. The checker's colourReference (src/workloads/reference/
 * colour.ts) computes the formula plainly, byte by byte, so the two are
 * independent implementations of one definition.
 *
 * Tables, for output channel c and input channel j (R, G, B):
 *   prod[(c * 3 + j) * 256 + v] = M[c][j] * v, plus (j = 0 only) the
 *       rounding half (128) and bias[c] * 256, so that
 *   i_c = (prod[c, R] + prod[c, G] + prod[c, B]) >> 8
 *       = ((acc_c + 128) >> 8) + bias[c]  >= 0 for every input pixel;
 *   out[c][i_c] = LUT[c][clamp(i_c - bias[c], 0, 255)] << (8 * c):
 *       the clamp and the gamma LUT in one lookup, already in place in the
 *       output word, so a pixel is nine loads, three loads and three ORs
 *       with no branch (the clamps were data-dependent branches).
 * bias[c] = -floor((the most negative acc_c + 128) / 256), from the
 * matrix: the largest negative reach of row c over inputs 0..255.
 */
import { COLOUR_Q8_ONE } from '../camera_chain_abi.js';

/** The engine's tables (see the top comment). */
export interface ColourTables {
  readonly prod: Int32Array;
  readonly out0: Int32Array;
  readonly out1: Int32Array;
  readonly out2: Int32Array;
}

/** Tables for a 9-entry Q8 matrix and a 768-entry LUT (validated by the caller's props schema). */
export function buildColourTables(matrix: readonly number[], lut: readonly number[]): ColourTables {
  const half = COLOUR_Q8_ONE / 2;
  const prod = new Int32Array(9 * 256);
  const outs: Int32Array[] = [];
  for (let c = 0; c < 3; c++) {
    const row = [matrix[c * 3], matrix[c * 3 + 1], matrix[c * 3 + 2]];
    const lo = row.reduce((s, m) => s + Math.min(0, m) * 255, 0);
    const hi = row.reduce((s, m) => s + Math.max(0, m) * 255, 0);
    const bias = -Math.floor((lo + half) / COLOUR_Q8_ONE);
    for (let j = 0; j < 3; j++) {
      for (let v = 0; v < 256; v++) prod[(c * 3 + j) * 256 + v] = row[j] * v + (j === 0 ? half + bias * COLOUR_Q8_ONE : 0);
    }
    const size = Math.floor((hi + half) / COLOUR_Q8_ONE) + bias + 1;
    const out = new Int32Array(size);
    for (let i = 0; i < size; i++) out[i] = lut[c * 256 + Math.min(255, Math.max(0, i - bias))] << (8 * c);
    outs.push(out);
  }
  return { prod, out0: outs[0], out1: outs[1], out2: outs[2] };
}

/**
 * Pixels inp[0..] -> out[0..] (little-endian RGBA words; alpha passes
 * through). Int32Array views and tables, not Uint32Array: a Uint32 load
 * above 2^31 is not an int32 for V8, and the loop ran 1.4x slower.
 */
export function colourTransform(inp: Int32Array, out: Int32Array, t: ColourTables): void {
  const prod = t.prod;
  const o0 = t.out0;
  const o1 = t.out1;
  const o2 = t.out2;
  const n = inp.length | 0;
  for (let i = 0; i < n; i = (i + 1) | 0) {
    const px = inp[i] | 0;
    const r = px & 255;
    const g = (px >>> 8) & 255;
    const b = (px >>> 16) & 255;
    const i0 = ((prod[r] | 0) + (prod[256 + g] | 0) + (prod[512 + b] | 0)) >> 8;
    const i1 = ((prod[768 + r] | 0) + (prod[1024 + g] | 0) + (prod[1280 + b] | 0)) >> 8;
    const i2 = ((prod[1536 + r] | 0) + (prod[1792 + g] | 0) + (prod[2048 + b] | 0)) >> 8;
    out[i] = o0[i0] | o1[i1] | o2[i2] | (px & 0xff000000);
  }
}
