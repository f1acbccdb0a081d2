/**
 * The accelerator's kernels (init, init+step fused, step, transform) and
 * the four-lane FNV checksum in WebAssembly SIMD, computed in place in the
 * device's own memory: that memory is a shared WebAssembly.Memory
 * (src/shm/phys_mem.ts, deviceWasmMemory) whose buffer is the device's
 * SharedArrayBuffer, and the module imports it, so no byte is copied in or
 * out. Same definition as accel_kernel.ts (src/devices/accelerator_abi.ts,
 * src/devices/fnv.ts); the workloads' references stay the plain JS of
 * src/workloads/reference/.
 *
 * Why: the JS kernels run ~0.5 ns a word at best, and the accelerator's
 * compute bounds accel-nic-stream's p2p stream (README). Four words an
 * instruction:
 *   - mix32 and the step's map are lane-wise (i32x4.mul is Math.imul);
 *   - the FNV checksum's four lanes are scalar i32 locals, not a vector
 *     (word i goes to scalar lane i % 4; why: at L below);
 *   - the step's prev chain is a prefix sum: x'[i] = t[i] + prev[i-1] with
 *     t[i] = imul(x ^ x >>> 15, M) + k, so a group's four outputs are the
 *     in-register inclusive scan of t (two shift-and-add shuffles) plus the
 *     previous group's last output, broadcast: the only serial dependency
 *     is one add and one shuffle per four words.
 *
 * Invariants: every exported function takes a byte offset and a word
 * count that is a multiple of 4 (the JS wrapper does the < 4 words left in
 * scalar code); the loops count the words down instead of comparing the
 * pointer with an end (p + n * 4 wraps to 0 for a buffer ending at 4 GiB),
 * and the JS wrapper indexes words with >>> (an offset may be >= 2^31);
 * the FNV lanes and prev live in exported i32 globals between calls (one
 * instance per worker, one kernel call at a time).
 */
import { ACC_GOLDEN, ACC_MIX_A, ACC_MIX_B, ACC_STEP_MUL } from '../accelerator_abi.js';
import { FNV_OFFSET, FNV_PRIME } from '../fnv.js';
import { foldLanes, type LaneKernel } from './checksum.js';
// Scalar mix32 for the < 4 words after the last group (`mix32` here is the v128 one).
import { accelTransform, mix32 as mix32s } from './accel_kernel.js';
import {
  BLOCK,
  END,
  I32,
  I32_ADD,
  I32_EQZ,
  I32_MUL,
  I32_SUB,
  I32_XOR,
  I64X2_SHL,
  LOOP,
  V128,
  Wasm,
  add,
  brIf,
  get,
  gget,
  gset,
  i32c,
  lane,
  load,
  moduleOf,
  mul,
  name,
  pinVia,
  section,
  set,
  shrU,
  shuffle,
  splat,
  tee,
  uleb,
  v128Global,
  vand,
  vconst,
  vec,
  vload,
  vstore,
  vxor,
  type WasmMemory,
} from './wasm_encoder.js';

// Globals: the four FNV lanes, then prev (i32, exported); then v128 ones, internal:
// the constant vectors and a slot for a per-call one (see pinned()).
const G_LANE = 0;
const G_PREV = 4;
const G_VEC = 5;
/** The v128 globals' initial values, in order from G_VEC: the multipliers, 1, the high-lanes mask, 4 * GOLDEN, then the per-call slot. */
const VEC_INIT: readonly (readonly number[])[] = [
  [ACC_MIX_A, ACC_MIX_A, ACC_MIX_A, ACC_MIX_A],
  [ACC_MIX_B, ACC_MIX_B, ACC_MIX_B, ACC_MIX_B],
  [ACC_STEP_MUL, ACC_STEP_MUL, ACC_STEP_MUL, ACC_STEP_MUL],
  [1, 1, 1, 1],
  [0, 0, -1, -1],
  [0, 1, 2, 3].map(() => Math.imul(4, ACC_GOLDEN)),
  [0, 0, 0, 0],
];
const G_SLOT = G_VEC + VEC_INIT.length - 1;

// Locals shared by every body, numbered as if it had 4 params (one with fewer declares unused i32s first).
// The FNV lanes are scalar i32 locals (lane0..3): i32x4.mul has a 10-cycle latency on
// current x86 and each lane is one serial chain, so scalar multiplies (3 cycles) keep up
// with the vector work and vector ones would not (measured: 0.59 against 0.25 ms per 2 MiB).
const L = { lane0: 4, prev: 8, idx: 9, step: 10, seed: 11, a: 12, b: 13, m: 14, k: 15, t: 16, hi: 17 };
const locals = (params: number) => vec([[4 - params + 4, I32], [10, V128]]);

/** Byte j of the result is byte idx[j] of (a, b): lane 1 everywhere, lane 3 everywhere (single-operand: one pshufd). */
const LANE1 = [4, 5, 6, 7, 4, 5, 6, 7, 4, 5, 6, 7, 4, 5, 6, 7];
const LAST = [12, 13, 14, 15, 12, 13, 14, 15, 12, 13, 14, 15, 12, 13, 14, 15];

const splatc = (n: number, to: number) => [...i32c(n | 0), ...splat, ...set(to)];

/**
 * local = splat(param), pinned in a register for the loop: through a
 * global's load, because TurboFan schedules a splat (of a constant or a
 * param) at each use, so inside the loop (movd + pshufd each group, both on
 * the shuffle port: initStep ran 0.63 ms per 2 MiB with them). The constant
 * vectors come from globals the same way (prologue).
 */
function pinned(param: number, local: number): number[] {
  return [...get(param), ...splat, ...pinVia(G_SLOT, local)];
}

/** The constant vectors into their locals. Param 0 is p, 1 is n. */
function prologue(): number[] {
  return [L.a, L.b, L.m, L.k, L.hi, L.step].flatMap((l, j) => [...gget(G_VEC + j), ...set(l)]);
}

/** lane0..3 = the four lane globals; prev = the prev global, broadcast. */
const loadState = [...[0, 1, 2, 3].flatMap((j) => [...gget(G_LANE + j), ...set(L.lane0 + j)]), ...gget(G_PREV), ...splat, ...set(L.prev)];
const storeState = [...[0, 1, 2, 3].flatMap((j) => [...get(L.lane0 + j), ...gset(G_LANE + j)]), ...get(L.prev), ...lane(0), ...gset(G_PREV)];

/** Each lane j = (lane j ^ word j of the group) * FNV_PRIME; the group is `word(j)`'s i32. */
const fnvGroup = (word: (j: number) => number[]) =>
  [0, 1, 2, 3].flatMap((j) => [...get(L.lane0 + j), ...word(j), ...I32_XOR, ...i32c(FNV_PRIME), ...I32_MUL, ...set(L.lane0 + j)]);
/** The FNV of the group just stored at p, read back as i32s (store-forwarded: cheaper than four lane extracts, which compete with the shuffles for one port). */
const fnvOfStored = fnvGroup((j) => [...get(0), ...load(4 * j)]);

/** idx = (first + [0, 1, 2, 3]) * GOLDEN, step = 4 * GOLDEN: the word index's product, advanced by one add a group. */
function indexVector(first: number): number[] {
  return [...get(first), ...splat, ...vconst([0, 1, 2, 3]), ...add, ...splatc(ACC_GOLDEN, L.t), ...get(L.t), ...mul, ...set(L.idx)];
}

/** indexVector from word 0 (init's buffer starts at word 0): a constant. */
const indexVector0 = [...vconst([0, 1, 2, 3].map((i) => Math.imul(i, ACC_GOLDEN))), ...set(L.idx)];

/** mix32 of the v128 on the stack, left on the stack (uses L.t). */
const mix32 = [
  ...set(L.t), ...get(L.t), ...get(L.t), ...i32c(16), ...shrU, ...vxor, ...get(L.a), ...mul,
  ...set(L.t), ...get(L.t), ...get(L.t), ...i32c(15), ...shrU, ...vxor, ...get(L.b), ...mul,
  ...set(L.t), ...get(L.t), ...get(L.t), ...i32c(16), ...shrU, ...vxor,
];

/** The step of the word on the stack: prefix sum of imul(v ^ v >>> 15, M) + k over the group, plus prev; stores it at p, prev and lanes follow. */
const stepGroup = [
  ...set(L.t), ...get(L.t), ...get(L.t), ...i32c(15), ...shrU, ...vxor, ...get(L.m), ...mul, ...get(L.k), ...add, ...set(L.t),
  // [t0, t0+t1, t2, t2+t3]: each 64-bit half shifted up one lane and added.
  ...get(L.t), ...get(L.t), ...i32c(32), ...I64X2_SHL, ...add, ...set(L.t),
  // + [0, 0, u1, u1] + prev: the inclusive scan, carried on.
  ...get(L.t), ...get(L.t), ...get(L.t), ...shuffle(LANE1), ...get(L.hi), ...vand, ...add, ...get(L.prev), ...add, ...set(L.t),
  ...get(0), ...get(L.t), ...vstore(0),
  ...get(L.t), ...get(L.t), ...shuffle(LAST), ...set(L.prev),
  ...fnvOfStored,
];

const nextIndex = [...get(L.idx), ...get(L.step), ...add, ...set(L.idx)];

/** if n != 0 do { body; p += 16; n -= 4 } while n != 0 (counted down: see the top comment; one branch a group). */
function loop(body: number[]): number[] {
  return [...BLOCK, ...get(1), ...I32_EQZ, ...brIf(0), ...LOOP, ...body,
    ...get(0), ...i32c(16), ...I32_ADD, ...set(0), ...get(1), ...i32c(4), ...I32_SUB, ...tee(1), ...brIf(0), ...END, ...END];
}

/** initStep(p, n, seed): x = step 1 of init; prev and lanes from and back to the globals. */
function initStepBody(): number[] {
  return [...prologue(), ...loadState, ...indexVector0, ...pinned(2, L.seed),
    ...loop([...get(L.seed), ...get(L.idx), ...vxor, ...mix32, ...stepGroup, ...nextIndex]), ...storeState, ...END];
}

/** init(p, n, seed): x = init; lanes from and back to the globals. */
function initBody(): number[] {
  return [...prologue(), ...loadState, ...indexVector0, ...pinned(2, L.seed),
    ...loop([...get(L.seed), ...get(L.idx), ...vxor, ...mix32, ...set(L.t), ...get(0), ...get(L.t), ...vstore(0), ...fnvOfStored, ...nextIndex]), ...storeState, ...END];
}

/** step(p, n, k): iteration k in place; prev and lanes from and back to the globals. */
function stepBody(): number[] {
  return [...prologue(), ...loadState, ...pinned(2, L.k), ...loop([...get(0), ...vload(0), ...stepGroup]), ...storeState, ...END];
}

/** transform(p, n, first, seed): x = mix32(x ^ seed ^ imul(first + i, GOLDEN)) + 1. */
function transformBody(): number[] {
  return [...prologue(), ...indexVector(2), ...pinned(3, L.seed),
    ...loop([...get(0), ...vload(0), ...get(L.seed), ...vxor, ...get(L.idx), ...vxor, ...mix32, ...get(L.k), ...add, ...set(L.t),
      ...get(0), ...get(L.t), ...vstore(0), ...nextIndex]), ...END];
}

/** fnv(p, n): the lanes over the words. */
function fnvBody(): number[] {
  return [...prologue(), ...loadState, ...loop(fnvGroup((j) => [...get(0), ...load(4 * j)])), ...storeState, ...END];
}

/** The module: imports env.mem (shared, any size), exports the five kernels and the lane and prev globals. */
function moduleBytes(): Uint8Array {
  const fn = (params: number) => [0x60, ...vec(Array.from({ length: params }, () => [I32])), 0];
  const kernels: [string, number, number[]][] = [
    ['initStep', 3, initStepBody()],
    ['init', 3, initBody()],
    ['step', 3, stepBody()],
    ['transform', 4, transformBody()],
    ['fnv', 2, fnvBody()],
  ];
  const types = [2, 3, 4].map(fn);
  const typeOf = (params: number) => params - 2;
  const globals = [...Array.from({ length: 5 }, () => [I32, 1, ...i32c(0), ...END]), ...VEC_INIT.map(v128Global)];
  const globalNames = ['l0', 'l1', 'l2', 'l3', 'prev'];
  return moduleOf([
    section(1, vec(types)),
    // Shared memory, min 1 page, max 65536 (any device memory imports).
    section(2, vec([[...name('env'), ...name('mem'), 0x02, 0x03, ...uleb(1), ...uleb(65536)]])),
    section(3, vec(kernels.map(([, params]) => [typeOf(params)]))),
    section(6, vec(globals)),
    section(7, vec([...kernels.map(([n], i) => [...name(n), 0x00, i]), ...globalNames.map((n, i) => [...name(n), 0x03, i])])),
    section(10, vec(kernels.map(([, params, body]) => {
      const b = [...locals(params), ...body];
      return [...uleb(b.length), ...b];
    }))),
  ]);
}

interface Global {
  value: number;
}

interface Exports {
  initStep(p: number, n: number, seed: number): void;
  init(p: number, n: number, seed: number): void;
  step(p: number, n: number, k: number): void;
  transform(p: number, n: number, first: number, seed: number): void;
  fnv(p: number, n: number): void;
  readonly l0: Global;
  readonly l1: Global;
  readonly l2: Global;
  readonly l3: Global;
  readonly prev: Global;
}

let compiled: object | null = null;


/**
 * The kernels over one device memory. Lifetime: the device's (one per
 * worker). Offsets are bytes into the memory, 4-aligned; counts are words
 * (a RangeError otherwise, or for words past the memory: check()).
 */
export class AccelSimd implements LaneKernel {
  private readonly k: Exports;
  private readonly words: Int32Array;
  readonly memory: ArrayBufferLike;

  constructor(memory: WasmMemory) {
    compiled ??= new Wasm.Module(moduleBytes());
    this.k = new Wasm.Instance(compiled, { env: { mem: memory } }).exports as Exports;
    this.words = new Int32Array(memory.buffer);
    this.memory = memory.buffer;
  }

  /** accelInit then accelStep(1): returns the checksum after the step. */
  initStep(off: number, n: number, seed: number): number {
    this.check(off, n);
    this.begin((seed ^ 1) | 0);
    const whole = n & ~3;
    this.k.initStep(off, whole, seed | 0);
    let prev = this.k.prev.value | 0;
    const w = this.words;
    for (let i = whole; i < n; i++) {
      const v = mix32s(seed ^ Math.imul(i, ACC_GOLDEN), ACC_MIX_A, ACC_MIX_B);
      prev = ((Math.imul(v ^ (v >>> 15), ACC_STEP_MUL) | 0) + prev + 1) | 0;
      w[(off >>> 2) + i] = prev;
    }
    return this.end(off, n, whole);
  }

  /** init: returns the buffer's checksum. */
  init(off: number, n: number, seed: number): number {
    this.check(off, n);
    this.begin(0);
    const whole = n & ~3;
    this.k.init(off, whole, seed | 0);
    for (let i = whole; i < n; i++) this.words[(off >>> 2) + i] = mix32s(seed ^ Math.imul(i, ACC_GOLDEN), ACC_MIX_A, ACC_MIX_B);
    return this.end(off, n, whole);
  }

  /** Iteration k in place: returns the checksum after it. */
  step(off: number, n: number, k: number, seed: number): number {
    this.check(off, n);
    this.begin((seed ^ k) | 0);
    const whole = n & ~3;
    this.k.step(off, whole, k | 0);
    let prev = this.k.prev.value | 0;
    const w = this.words;
    for (let i = (off >>> 2) + whole; i < (off >>> 2) + n; i++) {
      const v = w[i];
      prev = ((Math.imul(v ^ (v >>> 15), ACC_STEP_MUL) | 0) + prev + (k | 0)) | 0;
      w[i] = prev;
    }
    return this.end(off, n, whole);
  }

  /** transform of n words at off, whose index in the whole range starts at `first`. */
  transform(off: number, n: number, first: number, seed: number): void {
    this.check(off, n);
    const whole = n & ~3;
    this.k.transform(off, whole, first | 0, seed | 0);
    // The < 4 words after the groups: the JS kernel, chunkable at any word.
    if (whole < n) accelTransform(this.words.subarray((off >>> 2) + whole, (off >>> 2) + n), (first + whole) | 0, seed);
  }

  /** The checksum of n words at off. */
  checksum(off: number, n: number): number {
    this.check(off, n);
    this.begin(0);
    const whole = n & ~3;
    this.k.fnv(off, whole);
    return this.end(off, n, whole);
  }

  /**
   * Lanes of a stream checksum continued over n words at off (whole groups
   * of four; the stream's words so far a multiple of four): `lanes` in, the
   * new lanes out. For the NIC's sink (workers/nic.ts).
   */
  lanes(off: number, n: number, lanes: Int32Array): void {
    this.check(off, n);
    const k = this.k;
    k.l0.value = lanes[0];
    k.l1.value = lanes[1];
    k.l2.value = lanes[2];
    k.l3.value = lanes[3];
    k.fnv(off, n);
    lanes[0] = k.l0.value;
    lanes[1] = k.l1.value;
    lanes[2] = k.l2.value;
    lanes[3] = k.l3.value;
  }

  /** A clear error for an offset the kernels cannot take: off not 4-aligned (a word view would read other bytes than the module) or the words past the memory. */
  private check(off: number, n: number): void {
    if (!Number.isInteger(off) || off % 4 !== 0 || off < 0 || !Number.isInteger(n) || n < 0 || off + n * 4 > this.words.length * 4) {
      throw new RangeError(`AccelSimd: ${n} words at byte ${off}: the offset must be 4-aligned and the words inside the ${this.words.length * 4}-byte memory`);
    }
  }

  private begin(prev: number): void {
    const k = this.k;
    k.l0.value = k.l1.value = k.l2.value = k.l3.value = FNV_OFFSET | 0;
    k.prev.value = prev;
  }

  /** The < 4 words after `whole` into their lanes, then the fold. */
  private end(off: number, n: number, whole: number): number {
    const k = this.k;
    const l = [k.l0.value | 0, k.l1.value | 0, k.l2.value | 0, k.l3.value | 0];
    for (let i = whole; i < n; i++) l[i & 3] = Math.imul(l[i & 3] ^ this.words[(off >>> 2) + i], FNV_PRIME);
    return foldLanes(l[0], l[1], l[2], l[3], n * 4);
  }
}
