/**
 * The scene the emulated camera sensor sees: a deterministic RGBA pattern
 * from (seed, frame, pixel index). It is the stimulus of the camera chain,
 * shared by the camera device (which renders it) and the checker (which
 * feeds it to the CPU reference), so any corruption between the two shows
 * up as a mismatch in the output.
 *
 * A moving gradient plus hashed noise, so every channel sweeps all 256
 * values and neighbouring pixels differ.
 */

/** 32-bit mix (the finaliser of MurmurHash3). */
function mix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return h ^ (h >>> 16);
}

/**
 * Writes pixels [first, first + out.length) of frame `frame` into `out`,
 * one little-endian RGBA word per pixel (R in the low byte).
 */
export function renderPattern(out: Uint32Array, seed: number, frame: number, first: number, width: number): void {
  const key = mix((seed * 0x9e3779b1) ^ Math.imul(frame + 1, 0x27d4eb2f));
  let x = first % width;
  let y = (first - x) / width;
  for (let i = 0; i < out.length; i++) {
    const n = mix((first + i) ^ key);
    const r = (x + frame * 7 + (n & 15)) & 255;
    const g = (y * 2 + frame * 3 + ((n >>> 4) & 15)) & 255;
    const b = (n >>> 8) & 255;
    const a = 0xff - ((n >>> 16) & 3);
    out[i] = (r | (g << 8) | (b << 16) | (a << 24)) >>> 0;
    if (++x === width) {
      x = 0;
      y++;
    }
  }
}
