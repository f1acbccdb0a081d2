/**
 * The checker's own rendering of the sensor pattern (definition:
 * src/devices/camera_chain_abi.ts, PAT_*), written apart from the camera's
 * (src/devices/models/frame_pattern.ts): each pixel from its index alone,
 * where the camera steps (x, y) along a burst.
 */
import { PAT_FRAME_MUL, PAT_G_PER_FRAME, PAT_G_PER_ROW, PAT_MIX_A, PAT_MIX_B, PAT_R_PER_FRAME, PAT_SEED_MUL } from '../../devices/camera_chain_abi.js';

function murmurFinal(h: number): number {
  const a = Math.imul(h ^ (h >>> 16), PAT_MIX_A);
  const b = Math.imul(a ^ (a >>> 13), PAT_MIX_B);
  return b ^ (b >>> 16);
}

/** Frame `frame` of `out.length` pixels, `width` pixels a row, as little-endian RGBA words. */
export function patternReference(out: Uint32Array, seed: number, frame: number, width: number): void {
  const key = murmurFinal(Math.imul(seed, PAT_SEED_MUL) ^ Math.imul(frame + 1, PAT_FRAME_MUL));
  for (let p = 0; p < out.length; p++) {
    const n = murmurFinal(p ^ key);
    const x = p % width;
    const y = Math.floor(p / width);
    const r = (x + frame * PAT_R_PER_FRAME + (n & 15)) & 255;
    const g = (y * PAT_G_PER_ROW + frame * PAT_G_PER_FRAME + ((n >>> 4) & 15)) & 255;
    const b = (n >>> 8) & 255;
    const a = 255 - ((n >>> 16) & 3);
    out[p] = r + g * 0x100 + b * 0x10000 + a * 0x1000000;
  }
}
