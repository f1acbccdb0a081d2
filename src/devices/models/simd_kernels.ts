/**
 * The camera's render and the colour engine's transform in WebAssembly
 * SIMD (four pixels per instruction), for the device workers
 * (workers/camera.ts, workers/colour_correction.ts). Same definitions as
 * src/devices/models/frame_pattern.ts and colour_tables.ts (PAT_*,
 * ColourParams in src/devices/camera_chain_abi.ts); the checkers'
 * references stay the plain JS of src/workloads/reference/.
 *
 * Why: JS spends 2.5 ns a pixel rendering and 5.5 ns transforming, 5-10x a
 * copy of the pixel, and the camera chain's p2p / bounce ratio is bounded
 * by that compute (P2P saves copies, not compute). i32x4 lanes do the
 * hashing and the matrix four pixels at a time; the gamma LUT stays a
 * scalar load per channel (WebAssembly has no gather). Every constant or
 * per-call vector is pinned in a local before its loop (wasm_encoder.ts
 * pinVia): per 64 KiB burst render takes ~13 us and colour ~21 us
 * (README "Benchmarks"), 0.8 and 1.3 ns a pixel.
 *
 * The module owns its memory (device memory is a SharedArrayBuffer the
 * module cannot adopt): a burst is copied in (colour), computed, and
 * copied out to the device's line buffer — two 64 KiB copies in cache
 * (~3.5 us) against 13-21 us of compute. Layout of that memory, in bytes:
 *   [IN, +BURST_BYTES)   colour input pixels
 *   [OUT, +BURST_BYTES)  output pixels (render and colour)
 *   TABLES               matrix (6 x i32: i16 pairs, colourBody()), then the three LUTs, each
 *                        256 x i32 already shifted to its byte (R, G<<8, B<<16)
 *   SCRATCH              colour's LUT stage: 4 x v128 (lutStage())
 * The module is assembled here from its instructions (src/devices/models/wasm_encoder.ts: no toolchain, no
 * binary blob); one instance per worker.
 */
import { BLOCK, br, brIf, END, I32, I32_ADD, I32_EQ, I32_GE_U, I32_OR, I32_SHL, IF, LOOP, V128, Wasm, add, dotI16, get, gget, i32c, load, maxS, minS, moduleOf, mul, name, pinVia, section, set, shl, shrS, shrU, splat, store, uleb, v128Global, vand, vec, vload, vor, vstore, vxor } from './wasm_encoder.js';
import { PAT_FRAME_MUL, PAT_G_PER_FRAME, PAT_G_PER_ROW, PAT_MIX_A, PAT_MIX_B, PAT_R_PER_FRAME, PAT_SEED_MUL } from '../camera_chain_abi.js';

/** Largest burst one call computes, bytes (the workers' line-buffer burst). */
export const BURST_BYTES = 64 * 1024;
const IN = 0;
const OUT = BURST_BYTES;
const TABLES = 2 * BURST_BYTES;
const LUT = TABLES + 64;
const SCRATCH = LUT + 3 * 1024;
const PAGES = 3;

// v128 globals (mutable, internal): the constant vectors, then a slot a
// per-call vector passes through (wasm_encoder.ts pinVia: a constant or a
// splat read straight in the loop is rebuilt there at each use).
const VEC_INIT = {
  c255: [255, 255, 255, 255],
  lo16: [0x00ff00ff, 0x00ff00ff, 0x00ff00ff, 0x00ff00ff],
  one16: [0x10000, 0x10000, 0x10000, 0x10000],
  c15: [15, 15, 15, 15],
  baMask: [0x03ff0000, 0x03ff0000, 0x03ff0000, 0x03ff0000],
  alpha: [0xff000000 | 0, 0xff000000 | 0, 0xff000000 | 0, 0xff000000 | 0],
  ma: [PAT_MIX_A | 0, PAT_MIX_A | 0, PAT_MIX_A | 0, PAT_MIX_A | 0],
  mb: [PAT_MIX_B | 0, PAT_MIX_B | 0, PAT_MIX_B | 0, PAT_MIX_B | 0],
  lanes: [0, 1, 2, 3],
  four: [4, 4, 4, 4],
  slot: [0, 0, 0, 0],
} as const;
type VecName = keyof typeof VEC_INIT;
const G = Object.fromEntries(Object.keys(VEC_INIT).map((k, i) => [k, i])) as Record<VecName, number>;
/** local = the constant vector's global, before the loop. */
const constants = (pairs: readonly (readonly [VecName, number])[]) => pairs.flatMap(([g, l]) => [...gget(G[g]), ...set(l)]);
/** local = the v128 on the stack, computed once before the loop. */
const pin = (local: number) => pinVia(G.slot, local);

// --- colour(n): pixels IN -> OUT, n a multiple of 4 -------------------------------

/**
 * Locals of colour(): param 0 = n; then the ones below. The matrix product
 * is two i32x4.dot_i16x8_s (pmaddwd) a channel: rb = px & 0x00ff00ff holds
 * (r, b) as i16 pairs and gx = g | 1 << 16 holds (g, 1), against the words
 * (m0, m2) and (m1, 128) of the row (loadTables()): exact for any i16
 * entry (SimdColour refuses others; the schema allows [-4096, 4096]): the
 * channels are 0..255, so the sum stays under 2^25 and pmaddwd's one
 * overflow case (-32768 on both sides) cannot occur.
 */
const C = { end: 1, p: 2, px: 3, rb: 4, gx: 5, v0: 6, v1: 7, v2: 8, c255: 9, lo16: 10, one16: 11, zero: 12, m: 13 /* 13..18 */ };
const MATRIX_WORDS = 6;

function colourBody(): number[] {
  const code: number[] = [];
  for (let k = 0; k < MATRIX_WORDS; k++) code.push(...i32c(0), ...load(TABLES + 4 * k), ...splat, ...pin(C.m + k));
  // zero stays a splat: TurboFan makes it the vpxor zero idiom, no shuffle.
  code.push(...constants([['c255', C.c255], ['lo16', C.lo16], ['one16', C.one16]]), ...i32c(0), ...splat, ...set(C.zero));
  code.push(...get(0), ...i32c(2), ...I32_SHL, ...set(C.end));
  code.push(...BLOCK, ...LOOP, ...get(C.p), ...get(C.end), ...I32_GE_U, ...brIf(1));
  code.push(...get(C.p), ...vload(IN), ...set(C.px));
  code.push(...get(C.px), ...get(C.lo16), ...vand, ...set(C.rb));
  code.push(...get(C.px), ...i32c(8), ...shrU, ...get(C.c255), ...vand, ...get(C.one16), ...vor, ...set(C.gx));
  for (let c = 0; c < 3; c++) {
    // clamp(((m0 r + m2 b) + (m1 g + 128)) >> 8, 0, 255)
    code.push(...get(C.rb), ...get(C.m + 2 * c), ...dotI16, ...get(C.gx), ...get(C.m + 2 * c + 1), ...dotI16, ...add);
    code.push(...i32c(8), ...shrS, ...get(C.zero), ...maxS, ...get(C.c255), ...minS, ...set(C.v0 + c));
  }
  code.push(...lutStage());
  code.push(...get(C.p), ...i32c(16), ...I32_ADD, ...set(C.p), ...br(0), ...END, ...END, ...END);
  const locals = vec([[2, I32], [16, V128]]);
  return [...locals, ...code];
}

/**
 * The LUT stage of one group: the three channels' byte offsets and the
 * alpha go to SCRATCH as vectors, and each pixel's four words are scalar
 * loads from there (one load where a lane extract is two uops, one on the
 * shuffle port, plus a shift), the LUT loads indexed by them.
 */
function lutStage(): number[] {
  const code: number[] = [];
  for (let c = 0; c < 3; c++) code.push(...i32c(0), ...get(C.v0 + c), ...i32c(2), ...shl, ...vstore(SCRATCH + 16 * c));
  code.push(...i32c(0), ...get(C.px), ...i32c(24), ...shrU, ...i32c(24), ...shl, ...vstore(SCRATCH + 48));
  for (let j = 0; j < 4; j++) {
    code.push(...get(C.p), ...i32c(0), ...load(SCRATCH + 48 + 4 * j));
    for (let c = 0; c < 3; c++) code.push(...i32c(0), ...load(SCRATCH + 16 * c + 4 * j), ...load(LUT + 1024 * c), ...I32_OR);
    code.push(...store(OUT + 4 * j));
  }
  return code;
}

// --- render(n, idx, x, width, key, rFrame, gRow, gStep): n pixels -> OUT, groups of 4 in one row ---

/**
 * Locals of render(): params 0-7; then the vectors, each carried from group
 * to group: idxv = idx + lane, xr = x + lane + rFrame (xr0 at x = 0),
 * gv = gRow (+ gStepv at each new row), all advanced by adds.
 */
const R = {
  n: 0, idx: 1, x: 2, width: 3, key: 4, rFrame: 5, gRow: 6, gStep: 7, end: 8, p: 9,
  h: 10, keyv: 11, ma: 12, mb: 13, c15: 14, c255: 15, baMask: 16, four: 17, idxv: 18, xr: 19, xr0: 20, gv: 21, gStepv: 22, out: 23, alpha: 24,
};

function renderPrologue(): number[] {
  return [
    ...constants([['ma', R.ma], ['mb', R.mb], ['c15', R.c15], ['c255', R.c255], ['baMask', R.baMask], ['alpha', R.alpha], ['four', R.four]]),
    ...get(R.key), ...splat, ...pin(R.keyv),
    ...get(R.idx), ...splat, ...gget(G.lanes), ...add, ...pin(R.idxv),
    ...get(R.rFrame), ...splat, ...gget(G.lanes), ...add, ...pin(R.xr0),
    ...get(R.x), ...splat, ...get(R.xr0), ...add, ...pin(R.xr),
    ...get(R.gRow), ...splat, ...pin(R.gv),
    ...get(R.gStep), ...splat, ...pin(R.gStepv),
    ...get(R.n), ...i32c(2), ...I32_SHL, ...set(R.end),
  ];
}

function renderBody(): number[] {
  const code: number[] = [...renderPrologue()];
  code.push(...BLOCK, ...LOOP, ...get(R.p), ...get(R.end), ...I32_GE_U, ...brIf(1));
  // h = mix((idx + lane) ^ key)
  code.push(...get(R.idxv), ...get(R.keyv), ...vxor, ...set(R.h));
  code.push(...get(R.h), ...get(R.h), ...i32c(16), ...shrU, ...vxor, ...get(R.ma), ...mul, ...set(R.h));
  code.push(...get(R.h), ...get(R.h), ...i32c(13), ...shrU, ...vxor, ...get(R.mb), ...mul, ...set(R.h));
  code.push(...get(R.h), ...get(R.h), ...i32c(16), ...shrU, ...vxor, ...set(R.h));
  // r = (x + lane + rFrame + (h & 15)) & 255
  code.push(...get(R.xr), ...get(R.h), ...get(R.c15), ...vand, ...add, ...get(R.c255), ...vand, ...set(R.out));
  // | ((gRow + ((h >>> 4) & 15)) & 255) << 8
  code.push(...get(R.out), ...get(R.gv), ...get(R.h), ...i32c(4), ...shrU, ...get(R.c15), ...vand, ...add, ...get(R.c255), ...vand, ...i32c(8), ...shl, ...vor, ...set(R.out));
  // | ((h >>> 8) & 255) << 16 | (255 - ((h >>> 16) & 3)) << 24, as
  // ((h << 8) & 0x03ff0000) ^ 0xff000000 (255 - x is 255 ^ x for x <= 255)
  code.push(...get(R.out), ...get(R.h), ...i32c(8), ...shl, ...get(R.baMask), ...vand, ...get(R.alpha), ...vxor, ...vor, ...set(R.out));
  code.push(...get(R.p), ...get(R.out), ...vstore(OUT));
  code.push(...get(R.p), ...i32c(16), ...I32_ADD, ...set(R.p));
  code.push(...get(R.idxv), ...get(R.four), ...add, ...set(R.idxv), ...get(R.xr), ...get(R.four), ...add, ...set(R.xr));
  code.push(...get(R.x), ...i32c(4), ...I32_ADD, ...set(R.x));
  code.push(...get(R.x), ...get(R.width), ...I32_EQ, ...IF, ...i32c(0), ...set(R.x), ...get(R.xr0), ...set(R.xr), ...get(R.gv), ...get(R.gStepv), ...add, ...set(R.gv), ...END);
  code.push(...br(0), ...END, ...END, ...END);
  const locals = vec([[2, I32], [15, V128]]);
  return [...locals, ...code];
}

function moduleBytes(): Uint8Array {
  const colourType = [0x60, ...vec([[I32]]), 0];
  const renderType = [0x60, ...vec(Array.from({ length: 8 }, () => [I32])), 0];
  const bodies = [colourBody(), renderBody()].map((b) => [...uleb(b.length), ...b]);
  return moduleOf([
    section(1, vec([colourType, renderType])),
    section(3, vec([[0], [1]])),
    section(5, vec([[0x00, ...uleb(PAGES)]])),
    section(6, vec(Object.values(VEC_INIT).map(v128Global))),
    section(7, vec([[...name('mem'), 0x02, 0], [...name('colour'), 0x00, 0], [...name('render'), 0x00, 1]])),
    section(10, vec(bodies)),
  ]);
}

// --- the kernels ----------------------------------------------------------------------

interface Exports {
  readonly mem: { readonly buffer: ArrayBuffer };
  colour(n: number): void;
  render(n: number, idx: number, x: number, width: number, key: number, rFrame: number, gRow: number, gStep: number): void;
}

let instance: Exports | null = null;

function kernels(): Exports {
  instance ??= new Wasm.Instance(new Wasm.Module(moduleBytes())).exports as Exports;
  return instance;
}

/** The SimdColour whose tables are in the module's memory now. */
let tablesOf: SimdColour | null = null;

/** A colour engine's SIMD transform. Lifetime: the engine's (one per worker; a second one reloads the tables when it runs). */
export class SimdColour {
  private readonly k = kernels();
  private readonly words = new Int32Array(this.k.mem.buffer);

  constructor(
    private readonly matrix: readonly number[],
    private readonly lut: readonly number[],
  ) {
    // colour() multiplies in i16 pairs; device_kinds.ts validates [-4096, 4096].
    const bad = matrix.findIndex((v) => !Number.isInteger(v) || v < -32768 || v > 32767);
    if (matrix.length !== 9 || bad >= 0) throw new RangeError(`SimdColour: matrix ${matrix.length !== 9 ? `has ${matrix.length} entries, not 9` : `entry ${bad} = ${matrix[bad]} is not an i16`}`);
  }

  /** inp -> out, whole groups of 4 pixels, at most BURST_BYTES; returns the pixels done (the caller does the < 4 left). */
  transform(inp: Int32Array, out: Int32Array): number {
    if (tablesOf !== this) this.loadTables();
    const n = Math.min(inp.length, BURST_BYTES / 4) & ~3;
    this.words.set(inp.subarray(0, n), IN / 4);
    this.k.colour(n);
    out.set(this.words.subarray(OUT / 4, OUT / 4 + n));
    return n;
  }

  private loadTables(): void {
    const m = this.matrix;
    for (let c = 0; c < 3; c++) {
      this.words[TABLES / 4 + 2 * c] = (m[3 * c] & 0xffff) | (m[3 * c + 2] << 16);
      this.words[TABLES / 4 + 2 * c + 1] = (m[3 * c + 1] & 0xffff) | (128 << 16);
    }
    for (let c = 0; c < 3; c++) for (let v = 0; v < 256; v++) this.words[LUT / 4 + c * 256 + v] = this.lut[c * 256 + v] << (8 * c);
    tablesOf = this;
  }
}

/**
 * renderPattern (frame_pattern.ts) in SIMD when the burst is whole rows
 * of groups of 4 (width and first multiples of 4, at most BURST_BYTES);
 * false when it is not, and the caller renders it in JS.
 */
export function renderPatternSimd(out: Uint32Array, seed: number, frame: number, first: number, width: number): boolean {
  const n = out.length;
  if (width % 4 !== 0 || first % 4 !== 0 || n % 4 !== 0 || n * 4 > BURST_BYTES) return false;
  const k = kernels();
  let key = Math.imul(seed, PAT_SEED_MUL | 0) ^ Math.imul((frame + 1) | 0, PAT_FRAME_MUL | 0);
  key ^= key >>> 16;
  key = Math.imul(key, PAT_MIX_A | 0);
  key ^= key >>> 13;
  key = Math.imul(key, PAT_MIX_B | 0);
  key ^= key >>> 16;
  const x = first % width;
  const y = (first - x) / width;
  const gRow = (Math.imul(y, PAT_G_PER_ROW) + Math.imul(frame, PAT_G_PER_FRAME)) | 0;
  k.render(n, first | 0, x, width, key | 0, Math.imul(frame, PAT_R_PER_FRAME) | 0, gRow, PAT_G_PER_ROW);
  out.set(new Uint32Array(k.mem.buffer, OUT, n));
  return true;
}
