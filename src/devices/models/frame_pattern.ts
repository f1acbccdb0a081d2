/**
 * The scene the emulated camera sensor sees, as the camera renders it
 * (workers/camera.ts): definition in src/devices/camera_chain_abi.ts
 * (PAT_*). Walks the pixels in order, stepping (x, y) instead of dividing;
 * the checker's reference (src/workloads/reference/frame_pattern.ts)
 * computes each pixel from its index, so any corruption between the two
 * shows up as a mismatch in the output.
 */
import { PAT_FRAME_MUL, PAT_G_PER_FRAME, PAT_G_PER_ROW, PAT_MIX_A, PAT_MIX_B, PAT_R_PER_FRAME, PAT_SEED_MUL } from '../camera_chain_abi.js';

/** 32-bit mix (the finaliser of MurmurHash3). */
function mix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, PAT_MIX_A);
  h ^= h >>> 13;
  h = Math.imul(h, PAT_MIX_B);
  return h ^ (h >>> 16);
}

/**
 * Writes pixels [first, first + out.length) of frame `frame` into `out`,
 * one little-endian RGBA word per pixel (R in the low byte).
 */
export function renderPattern(out: Uint32Array, seed: number, frame: number, first: number, width: number): void {
  const key = mix(Math.imul(seed, PAT_SEED_MUL) ^ Math.imul(frame + 1, PAT_FRAME_MUL));
  let x = first % width;
  let y = (first - x) / width;
  for (let i = 0; i < out.length; i++) {
    const n = mix((first + i) ^ key);
    const r = (x + frame * PAT_R_PER_FRAME + (n & 15)) & 255;
    const g = (y * PAT_G_PER_ROW + frame * PAT_G_PER_FRAME + ((n >>> 4) & 15)) & 255;
    const b = (n >>> 8) & 255;
    const a = 0xff - ((n >>> 16) & 3);
    out[i] = (r | (g << 8) | (b << 16) | (a << 24)) >>> 0;
    if (++x === width) {
      x = 0;
      y++;
    }
  }
}
