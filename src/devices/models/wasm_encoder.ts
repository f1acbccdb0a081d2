/**
 * A minimal WebAssembly encoder for the device models' SIMD kernels
 * (simd_kernels.ts: camera and colour engine; accel_simd.ts: accelerator
 * and checksum): each module is assembled from its instructions in
 * TypeScript, with no toolchain and no binary blob. Only the instructions
 * and sections those kernels use; opcodes from the WebAssembly core and
 * SIMD specifications.
 */

export function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n !== 0) b |= 0x80;
    out.push(b);
  } while (n !== 0);
  return out;
}

export function sleb(n: number): number[] {
  const out: number[] = [];
  n |= 0;
  for (;;) {
    const b = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (b & 0x40) === 0) || (n === -1 && (b & 0x40) !== 0)) {
      out.push(b);
      return out;
    }
    out.push(b | 0x80);
  }
}

export const I32 = 0x7f;
export const V128 = 0x7b;
export const get = (i: number) => [0x20, ...uleb(i)];
export const set = (i: number) => [0x21, ...uleb(i)];
export const tee = (i: number) => [0x22, ...uleb(i)];
export const gget = (i: number) => [0x23, ...uleb(i)];
export const gset = (i: number) => [0x24, ...uleb(i)];
export const i32c = (n: number) => [0x41, ...sleb(n)];
export const simd = (op: number, ...imm: number[]) => [0xfd, ...uleb(op), ...imm];
/** i8x16.shuffle of the two v128 on the stack: byte j of the result is byte idx[j] of (a, b) (0-15 a, 16-31 b). */
export const shuffle = (idx: readonly number[]) => simd(0x0d, ...idx);
export const splat = simd(0x11);
export const vand = simd(0x4e);
export const vor = simd(0x50);
export const vxor = simd(0x51);
export const shl = simd(0xab);
export const shrS = simd(0xac);
export const shrU = simd(0xad);
export const add = simd(0xae);
export const mul = simd(0xb5);
export const minS = simd(0xb6);
export const maxS = simd(0xb8);
/** i32x4.dot_i16x8_s: each i32 lane = a.lo16 * b.lo16 + a.hi16 * b.hi16, signed (pmaddwd). */
export const dotI16 = simd(0xba);
export const lane = (j: number) => simd(0x1b, j);
export const vload = (offset: number) => simd(0x00, 4, ...uleb(offset));
export const vstore = (offset: number) => simd(0x0b, 4, ...uleb(offset));
export const load = (offset: number) => [0x28, 2, ...uleb(offset)];
export const store = (offset: number) => [0x36, 2, ...uleb(offset)];
export const [I32_ADD, I32_SUB, I32_MUL, I32_SHL, I32_OR, I32_XOR, I32_GE_U, I32_EQ, I32_EQZ] = [[0x6a], [0x6b], [0x6c], [0x74], [0x72], [0x73], [0x4f], [0x46], [0x45]];
/** i64x2.shl: each 64-bit half shifted left by the i32 on the stack. */
export const I64X2_SHL = simd(0xcb);
/** v128.const of four i32 lanes (little-endian bytes). */
export const vconst = (w: readonly number[]) => simd(0x0c, ...w.flatMap((v) => [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff]));

/**
 * local = the v128 on the stack, pinned in a register for the loop that
 * follows: through a mutable global's store and load, which TurboFan keeps
 * where they are. A splat (of a constant or a param) or a v128.const is a
 * pure node it schedules at each use, so inside the loop: movd + pshufd (or
 * a constant rebuilt) per vector per group, on the shuffle port (seen with
 * `node --print-wasm-code`). Constant vectors: gget(their global) + set.
 */
export const pinVia = (slot: number, local: number) => [...gset(slot), ...gget(slot), ...set(local)];
export const BLOCK = [0x02, 0x40];
export const LOOP = [0x03, 0x40];
export const IF = [0x04, 0x40];
export const END = [0x0b];
/** A mutable v128 global's declaration (global section entry), initialised to the four i32 lanes w. */
export const v128Global = (w: readonly number[]) => [V128, 1, ...vconst(w), ...END];
export const br = (d: number) => [0x0c, ...uleb(d)];
export const brIf = (d: number) => [0x0d, ...uleb(d)];

export function section(id: number, body: number[]): number[] {
  return [id, ...uleb(body.length), ...body];
}

export function vec(items: number[][]): number[] {
  return [...uleb(items.length), ...items.flat()];
}

/** A module: the magic and version header, then the sections (each from section()) in order. */
export function moduleOf(sections: readonly number[][]): Uint8Array {
  return Uint8Array.from([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, ...sections.flat()]);
}

export function name(s: string): number[] {
  return [...uleb(s.length), ...Array.from(s, (c) => c.charCodeAt(0))];
}

export { Wasm, type WasmMemory } from '../../common/wasm.js';
