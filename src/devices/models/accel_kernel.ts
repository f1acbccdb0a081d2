/**
 * The accelerator's compute kernel as the device runs it
 * (workers/accelerator.ts): definition in src/devices/accelerator_abi.ts
 * (ACC_GOLDEN, ACC_MIX_*, ACC_STEP_MUL). Pure functions of their
 * arguments. The checksum (four-lane word FNV-1a, src/devices/fnv.ts) is
 * computed in the same pass as the iteration, four words a turn; the
 * workloads' reference (src/workloads/reference/accel.ts) computes it in a
 * pass of its own, so the two share the definition, not the code.
 *
 * Each word of an iteration depends on the one before it (prev), so an
 * iteration is sequential and its cost linear in the buffer. The loops are
 * written asm.js style — every operand of + is `| 0`, and the imported
 * constants are copied into locals first: without the first V8 compiles
 * the prev chain, whose sums overflow 32 bits, to float64 additions
 * (4-5 ns a word against under 1 ns); without the second it reloads the
 * module binding in the loop (transform: 10 ns a word against 1.5). accelTransform is the position-dependent per-word map of
 * ACC_OP_TRANSFORM_VA, chunkable at any word boundary.
 */
import { ACC_GOLDEN, ACC_MIX_A, ACC_MIX_B, ACC_STEP_MUL } from '../accelerator_abi.js';
import { FNV_OFFSET, FNV_PRIME } from '../fnv.js';
import { checksum, foldLanes } from './checksum.js';

/** mix32 of the definition; the multipliers come in as arguments from the caller's locals (see the top comment). Also accel_simd.ts's tail. */
export function mix32(v: number, A: number, B: number): number {
  v = Math.imul(v ^ (v >>> 16), A);
  v = Math.imul(v ^ (v >>> 15), B);
  return (v ^ (v >>> 16)) | 0;
}

/** The checksum of the buffer (iteration 0 when COMPUTE does not seed it), unsigned. */
export function checksumWords(x: Int32Array): number {
  return checksum(new Uint8Array(x.buffer, x.byteOffset, x.byteLength));
}

/** The four lanes' FNV-1a state while a kernel pass fills the buffer. */
class Lanes {
  a: number;
  b: number;
  c: number;
  d: number;
  constructor(init: number) {
    this.a = this.b = this.c = this.d = init | 0;
  }
  /** Word i of value v (for the < 4 words after the last whole group). */
  tail(i: number, v: number): void {
    const P = FNV_PRIME | 0;
    if ((i & 3) === 0) this.a = Math.imul(this.a ^ v, P);
    else if ((i & 3) === 1) this.b = Math.imul(this.b ^ v, P);
    else if ((i & 3) === 2) this.c = Math.imul(this.c ^ v, P);
    else this.d = Math.imul(this.d ^ v, P);
  }
  fold(bytes: number): number {
    return foldLanes(this.a, this.b, this.c, this.d, bytes);
  }
}

/** Seeds the buffer; returns its checksum. */
export function accelInit(x: Int32Array, seed: number): number {
  const G = ACC_GOLDEN | 0;
  const A = ACC_MIX_A | 0;
  const B = ACC_MIX_B | 0;
  const P = FNV_PRIME | 0;
  seed |= 0;
  const n = x.length | 0;
  const end = n & ~3;
  const L = new Lanes(FNV_OFFSET);
  let a = L.a | 0;
  let b = L.b | 0;
  let c = L.c | 0;
  let d = L.d | 0;
  let i = 0;
  for (; i < end; i = (i + 4) | 0) {
    const v0 = mix32(seed ^ Math.imul(i, G), A, B);
    const v1 = mix32(seed ^ Math.imul((i + 1) | 0, G), A, B);
    const v2 = mix32(seed ^ Math.imul((i + 2) | 0, G), A, B);
    const v3 = mix32(seed ^ Math.imul((i + 3) | 0, G), A, B);
    x[i] = v0;
    x[i + 1] = v1;
    x[i + 2] = v2;
    x[i + 3] = v3;
    a = Math.imul(a ^ v0, P);
    b = Math.imul(b ^ v1, P);
    c = Math.imul(c ^ v2, P);
    d = Math.imul(d ^ v3, P);
  }
  L.a = a;
  L.b = b;
  L.c = c;
  L.d = d;
  for (; i < n; i++) {
    const v = mix32(seed ^ Math.imul(i, G), A, B);
    x[i] = v;
    L.tail(i, v);
  }
  return L.fold(x.byteLength);
}

/**
 * accelInit then accelStep(x, 1, seed) in one pass: each word is seeded and
 * stepped while in a register, and only the checksum after the step is
 * kept (COMPUTE with ACC_F_INIT and iterations >= 1 returns that one; the
 * seed's checksum was computed and dropped). Half the memory traffic of
 * the two passes and one checksum instead of two: 2 MiB results of
 * accel-nic-stream cost ~45% less device compute. Same definition, so the
 * buffer and checksum equal the two calls' (tested).
 */
export function accelInitStep(x: Int32Array, seed: number): number {
  const G = ACC_GOLDEN | 0;
  const A = ACC_MIX_A | 0;
  const B = ACC_MIX_B | 0;
  const M = ACC_STEP_MUL | 0;
  const P = FNV_PRIME | 0;
  seed |= 0;
  const n = x.length | 0;
  const end = n & ~3;
  const L = new Lanes(FNV_OFFSET);
  let a = L.a | 0;
  let b = L.b | 0;
  let c = L.c | 0;
  let d = L.d | 0;
  let prev = (seed ^ 1) | 0;
  let i = 0;
  for (; i < end; i = (i + 4) | 0) {
    let v = mix32(seed ^ Math.imul(i, G), A, B);
    prev = (((Math.imul(v ^ (v >>> 15), M) | 0) + (prev | 0)) | 0) + 1 | 0;
    x[i] = prev;
    a = Math.imul(a ^ prev, P);
    v = mix32(seed ^ Math.imul((i + 1) | 0, G), A, B);
    prev = (((Math.imul(v ^ (v >>> 15), M) | 0) + (prev | 0)) | 0) + 1 | 0;
    x[i + 1] = prev;
    b = Math.imul(b ^ prev, P);
    v = mix32(seed ^ Math.imul((i + 2) | 0, G), A, B);
    prev = (((Math.imul(v ^ (v >>> 15), M) | 0) + (prev | 0)) | 0) + 1 | 0;
    x[i + 2] = prev;
    c = Math.imul(c ^ prev, P);
    v = mix32(seed ^ Math.imul((i + 3) | 0, G), A, B);
    prev = (((Math.imul(v ^ (v >>> 15), M) | 0) + (prev | 0)) | 0) + 1 | 0;
    x[i + 3] = prev;
    d = Math.imul(d ^ prev, P);
  }
  L.a = a;
  L.b = b;
  L.c = c;
  L.d = d;
  for (; i < n; i++) {
    const v = mix32(seed ^ Math.imul(i, G), A, B);
    prev = (((Math.imul(v ^ (v >>> 15), M) | 0) + (prev | 0)) | 0) + 1 | 0;
    x[i] = prev;
    L.tail(i, prev);
  }
  return L.fold(x.byteLength);
}

/** Iteration k (1-based) in place; returns the checksum of the buffer after it. */
export function accelStep(x: Int32Array, k: number, seed: number): number {
  const M = ACC_STEP_MUL | 0;
  const P = FNV_PRIME | 0;
  k |= 0;
  const n = x.length | 0;
  const end = n & ~3;
  const L = new Lanes(FNV_OFFSET);
  let a = L.a | 0;
  let b = L.b | 0;
  let c = L.c | 0;
  let d = L.d | 0;
  let prev = (seed ^ k) | 0;
  let i = 0;
  for (; i < end; i = (i + 4) | 0) {
    let v = x[i] | 0;
    prev = (((Math.imul(v ^ (v >>> 15), M) | 0) + (prev | 0)) | 0) + k | 0;
    x[i] = prev;
    a = Math.imul(a ^ prev, P);
    v = x[i + 1] | 0;
    prev = (((Math.imul(v ^ (v >>> 15), M) | 0) + (prev | 0)) | 0) + k | 0;
    x[i + 1] = prev;
    b = Math.imul(b ^ prev, P);
    v = x[i + 2] | 0;
    prev = (((Math.imul(v ^ (v >>> 15), M) | 0) + (prev | 0)) | 0) + k | 0;
    x[i + 2] = prev;
    c = Math.imul(c ^ prev, P);
    v = x[i + 3] | 0;
    prev = (((Math.imul(v ^ (v >>> 15), M) | 0) + (prev | 0)) | 0) + k | 0;
    x[i + 3] = prev;
    d = Math.imul(d ^ prev, P);
  }
  L.a = a;
  L.b = b;
  L.c = c;
  L.d = d;
  for (; i < n; i++) {
    const v = x[i] | 0;
    prev = (((Math.imul(v ^ (v >>> 15), M) | 0) + (prev | 0)) | 0) + k | 0;
    x[i] = prev;
    L.tail(i, prev);
  }
  return L.fold(x.byteLength);
}

/** ACC_OP_TRANSFORM_VA on words whose index in the whole range starts at `first`. */
export function accelTransform(x: Int32Array, first: number, seed: number): void {
  const G = ACC_GOLDEN | 0;
  const A = ACC_MIX_A | 0;
  const B = ACC_MIX_B | 0;
  seed |= 0;
  first |= 0;
  const n = x.length | 0;
  for (let i = 0; i < n; i = (i + 1) | 0) x[i] = (mix32((x[i] | 0) ^ seed ^ Math.imul((first + i) | 0, G), A, B) + 1) | 0;
}
