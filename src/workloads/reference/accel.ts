/**
 * CPU reference of the accelerator kernel (definition:
 * src/devices/accelerator_abi.ts), written apart from the device's
 * (src/devices/models/accel_kernel.ts): one pass per step of the
 * definition, the checksum in a pass of its own, so a slip in the device's
 * fused loop shows as a mismatch.
 */
import { ACC_GOLDEN, ACC_MIX_A, ACC_MIX_B, ACC_STEP_MUL } from '../../devices/accelerator_abi.js';
import { fnv1aWordsReference } from './checksum.js';

function mix32(v: number): number {
  const a = Math.imul(v ^ (v >>> 16), ACC_MIX_A);
  const b = Math.imul(a ^ (a >>> 15), ACC_MIX_B);
  return b ^ (b >>> 16);
}

/** `init` of the definition, over the whole buffer. */
export function accelInitReference(x: Int32Array, seed: number): void {
  for (let i = 0; i < x.length; i++) x[i] = mix32(seed ^ Math.imul(i, ACC_GOLDEN));
}

/** Iteration k (1-based) of the definition, in place. */
function iterate(x: Int32Array, k: number, seed: number): void {
  let prev = seed ^ k;
  for (let i = 0; i < x.length; i++) {
    // `| 0` on each operand keeps V8 on int32 adds; the sum overflows 32 bits, and float adds cost 5x.
    x[i] = ((Math.imul(x[i] ^ (x[i] >>> 15), ACC_STEP_MUL) | 0) + (prev | 0) + (k | 0)) | 0;
    prev = x[i];
  }
}

/** `transform` of the definition; `first` is the index of x[0] in the whole range. */
export function accelTransformReference(x: Int32Array, first: number, seed: number): void {
  for (let i = 0; i < x.length; i++) x[i] = mix32(x[i] ^ seed ^ Math.imul(first + i, ACC_GOLDEN)) + 1;
}

/** One COMPUTE: the checksum after each iteration 0..iterations, and the final buffer. */
export function accelReference(words: number, seed: number, iterations: number): { checksums: Uint32Array; buffer: Int32Array } {
  const x = new Int32Array(words);
  const checksums = new Uint32Array(iterations + 1);
  accelInitReference(x, seed);
  checksums[0] = fnv1aWordsReference(x);
  for (let k = 1; k <= iterations; k++) {
    iterate(x, k, seed);
    checksums[k] = fnv1aWordsReference(x);
  }
  return { checksums, buffer: x };
}
