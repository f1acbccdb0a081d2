/**
 * The accelerator's compute kernel: a seeded, iterative integer kernel
 * over a buffer of 32-bit words, run by the device (workers/accelerator.ts)
 * and by the CPU reference of the workloads (accelReference). Pure
 * functions of their arguments; what the data checks guard is the path
 * between device memory and the checker (publishing, P2P reads, bounces,
 * revocations), not this arithmetic.
 *
 *   init        x[i] = mix32(seed ^ i * golden)
 *   iteration k prev = seed ^ k
 *               for i in 0..n-1: x[i] = mix(x[i]) + prev + k; prev = x[i]
 *   checksum    word-wise FNV-1a over x[0..n-1] after the iteration
 *               (h = (h ^ x[i]) * FNV prime, from FNV_OFFSET), computed in
 *               the same pass.
 *
 * Each word depends on the one before it, so an iteration is sequential
 * and its cost is linear in the buffer (about 1-2 ns a word in V8).
 * accelTransform is the position-dependent per-word map of
 * ACC_OP_TRANSFORM_VA, chunkable at any word boundary.
 */
import { FNV_OFFSET } from './checksum.js';

const FNV_PRIME = 0x01000193;
const GOLDEN = 0x9e3779b1 | 0;

function mix32(v: number): number {
  v = Math.imul(v ^ (v >>> 16), 0x7feb352d);
  v = Math.imul(v ^ (v >>> 15), 0x846ca68b | 0);
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
    const v = mix32(seed ^ Math.imul(i, GOLDEN));
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
    v = Math.imul(v ^ (v >>> 15), 0x2c1b3c6d);
    v = (v + prev + k) | 0;
    x[i] = v;
    prev = v;
    h = Math.imul(h ^ v, FNV_PRIME);
  }
  return h >>> 0;
}

/** ACC_OP_TRANSFORM_VA on words whose index in the whole range starts at `first`. */
export function accelTransform(x: Int32Array, first: number, seed: number): void {
  for (let i = 0; i < x.length; i++) x[i] = mix32(x[i] ^ seed ^ Math.imul(first + i, GOLDEN)) + 1;
}

/** CPU reference of one COMPUTE: the checksum after each iteration 0..iterations, and the final buffer. */
export function accelReference(words: number, seed: number, iterations: number): { checksums: Uint32Array; buffer: Int32Array } {
  const x = new Int32Array(words);
  const checksums = new Uint32Array(iterations + 1);
  checksums[0] = accelInit(x, seed);
  for (let k = 1; k <= iterations; k++) checksums[k] = accelStep(x, k, seed);
  return { checksums, buffer: x };
}
