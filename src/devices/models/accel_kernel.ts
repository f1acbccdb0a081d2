/**
 * The accelerator's compute kernel as the device runs it
 * (workers/accelerator.ts): definition in src/devices/accelerator_abi.ts
 * (ACC_GOLDEN, ACC_MIX_*, ACC_STEP_MUL). Pure functions of their
 * arguments. The checksum is computed in the same pass as the iteration;
 * the workloads' reference (src/workloads/reference/accel.ts) computes it
 * in a pass of its own, so the two share the definition, not the code.
 *
 * Each word depends on the one before it, so an iteration is sequential
 * and its cost is linear in the buffer (about 1-2 ns a word in V8).
 * accelTransform is the position-dependent per-word map of
 * ACC_OP_TRANSFORM_VA, chunkable at any word boundary.
 */
import { ACC_GOLDEN, ACC_MIX_A, ACC_MIX_B, ACC_STEP_MUL } from '../accelerator_abi.js';
import { FNV_OFFSET, FNV_PRIME } from '../fnv.js';

function mix32(v: number): number {
  v = Math.imul(v ^ (v >>> 16), ACC_MIX_A);
  v = Math.imul(v ^ (v >>> 15), ACC_MIX_B);
  return v ^ (v >>> 16);
}

/** Word-wise FNV-1a of a buffer (the checksum of iteration 0 and of accelStep). */
export function checksumWords(x: Int32Array): number {
  let h = FNV_OFFSET;
  for (let i = 0; i < x.length; i++) h = Math.imul(h ^ x[i], FNV_PRIME);
  return h >>> 0;
}

/** Seeds the buffer; returns its checksum. */
export function accelInit(x: Int32Array, seed: number): number {
  let h = FNV_OFFSET;
  for (let i = 0; i < x.length; i++) {
    const v = mix32(seed ^ Math.imul(i, ACC_GOLDEN));
    x[i] = v;
    h = Math.imul(h ^ v, FNV_PRIME);
  }
  return h >>> 0;
}

/** Iteration k (1-based) in place; returns the checksum of the buffer after it. */
export function accelStep(x: Int32Array, k: number, seed: number): number {
  let h = FNV_OFFSET;
  let prev = seed ^ k;
  for (let i = 0; i < x.length; i++) {
    let v = x[i];
    v = Math.imul(v ^ (v >>> 15), ACC_STEP_MUL);
    v = (v + prev + k) | 0;
    x[i] = v;
    prev = v;
    h = Math.imul(h ^ v, FNV_PRIME);
  }
  return h >>> 0;
}

/** ACC_OP_TRANSFORM_VA on words whose index in the whole range starts at `first`. */
export function accelTransform(x: Int32Array, first: number, seed: number): void {
  for (let i = 0; i < x.length; i++) x[i] = mix32(x[i] ^ seed ^ Math.imul(first + i, ACC_GOLDEN)) + 1;
}
