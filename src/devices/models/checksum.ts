/**
 * The devices' checksum as the devices compute it: FNV-1a over 32-bit
 * little-endian words in four lanes (definition: src/devices/fnv.ts),
 * continuable across chunks. The workloads check it with their own
 * implementation (src/workloads/reference/checksum.ts), so what the check
 * guards is the data path between them, and a slip in either shows.
 *
 * Invariants: every chunk but the last is a whole number of words (a
 * ragged word can only end the stream: update() refuses more after it);
 * the chunk's bytes start 4-aligned in their buffer (the devices checksum
 * their own packet buffers), so the words are read through an Int32Array
 * view in host order, which is little-endian on every host Node runs on.
 *
 * The arithmetic is written asm.js style ((a | 0) ^ (b | 0), Math.imul):
 * V8 then keeps the lanes in 32-bit registers instead of doubles.
 */
import { FNV_OFFSET, FNV_PRIME } from '../fnv.js';

/** Continues the four lanes over whole groups of words in place in its memory (accel_simd.ts: WebAssembly). */
export interface LaneKernel {
  /** The memory the kernel reads: a chunk elsewhere is hashed in JS. */
  readonly memory: ArrayBufferLike;
  /** lanes = the lanes continued over n words (a multiple of 4) at byte `off`. */
  lanes(off: number, n: number, lanes: Int32Array): void;
}

/** Checksum of one stream of bytes fed in chunks. Lifetime: one stream (one SEND). */
export class StreamChecksum {
  private l0 = FNV_OFFSET | 0;
  private l1 = FNV_OFFSET | 0;
  private l2 = FNV_OFFSET | 0;
  private l3 = FNV_OFFSET | 0;
  /** Words hashed so far (the lane of the next word is words % 4). */
  private words = 0;
  private bytes = 0;
  private ragged = false;
  /** Words the kernel hashed (the rest were hashed in JS): which path ran, for the devices' counters. */
  kernelWords = 0;
  /** The lanes handed to the kernel and back: one per stream, not one per chunk. */
  private readonly kernelLaneBuf = new Int32Array(4);

  /** `kernel`: hash whole groups with it when the chunk is in its memory (same result, tested). */
  constructor(private readonly kernel: LaneKernel | null = null) {}

  /** Hashes the next chunk of the stream. */
  update(chunk: Uint8Array): void {
    if (this.ragged) throw new RangeError('checksum: a chunk after a ragged (not whole-word) one');
    if (chunk.byteOffset % 4 !== 0) throw new RangeError(`checksum: chunk at byte ${chunk.byteOffset} is not 4-aligned`);
    const whole = chunk.length >>> 2;
    const w = new Int32Array(chunk.buffer, chunk.byteOffset, whole);
    let i = 0;
    // Lead-in up to a lane-0 word (only when a chunk ended off a 4-word boundary).
    for (; i < whole && ((this.words + i) & 3) !== 0; i++) this.one(w[i] | 0, this.words + i);
    i = this.kernel !== null && chunk.buffer === this.kernel.memory ? this.kernelLanes(w, i) : this.lanes(w, i);
    for (; i < whole; i++) this.one(w[i] | 0, this.words + i);
    this.words += whole;
    this.bytes += chunk.length;
    const rest = chunk.length & 3;
    if (rest !== 0) {
      let v = 0;
      for (let k = 0; k < rest; k++) v |= chunk[whole * 4 + k] << (8 * k);
      this.one(v | 0, this.words++);
      this.ragged = true;
    }
  }

  /** The checksum of everything fed so far, unsigned. */
  digest(): number {
    return foldLanes(this.l0, this.l1, this.l2, this.l3, this.bytes);
  }

  /** The four-lane loop over w[from..], whole groups of four; returns where it stopped. */
  private lanes(w: Int32Array, from: number): number {
    const P = FNV_PRIME | 0;
    let a = this.l0 | 0;
    let b = this.l1 | 0;
    let c = this.l2 | 0;
    let d = this.l3 | 0;
    const end = from + ((w.length - from) & ~3);
    let i = from | 0;
    for (; i < end; i = (i + 4) | 0) {
      a = Math.imul(a ^ (w[i] | 0), P);
      b = Math.imul(b ^ (w[i + 1] | 0), P);
      c = Math.imul(c ^ (w[i + 2] | 0), P);
      d = Math.imul(d ^ (w[i + 3] | 0), P);
    }
    this.l0 = a;
    this.l1 = b;
    this.l2 = c;
    this.l3 = d;
    return i;
  }

  /** lanes() by the kernel. */
  private kernelLanes(w: Int32Array, from: number): number {
    const n = (w.length - from) & ~3;
    const l = this.kernelLaneBuf;
    l[0] = this.l0;
    l[1] = this.l1;
    l[2] = this.l2;
    l[3] = this.l3;
    this.kernel!.lanes(w.byteOffset + from * 4, n, l);
    this.l0 = l[0];
    this.l1 = l[1];
    this.l2 = l[2];
    this.l3 = l[3];
    this.kernelWords += n;
    return from + n;
  }

  /** Word number `index` of the stream, value v. */
  private one(v: number, index: number): void {
    switch (index & 3) {
      case 0:
        this.l0 = Math.imul(this.l0 ^ v, FNV_PRIME);
        break;
      case 1:
        this.l1 = Math.imul(this.l1 ^ v, FNV_PRIME);
        break;
      case 2:
        this.l2 = Math.imul(this.l2 ^ v, FNV_PRIME);
        break;
      default:
        this.l3 = Math.imul(this.l3 ^ v, FNV_PRIME);
    }
  }
}

/** The definition's fold of the four lanes and the length, unsigned. */
export function foldLanes(l0: number, l1: number, l2: number, l3: number, bytes: number): number {
  let h = FNV_OFFSET | 0;
  h = Math.imul(h ^ l0, FNV_PRIME);
  h = Math.imul(h ^ l1, FNV_PRIME);
  h = Math.imul(h ^ l2, FNV_PRIME);
  h = Math.imul(h ^ l3, FNV_PRIME);
  h = Math.imul(h ^ (bytes | 0), FNV_PRIME);
  return h >>> 0;
}

/** The checksum of one whole buffer (4-aligned start), unsigned. */
export function checksum(bytes: Uint8Array): number {
  const s = new StreamChecksum();
  s.update(bytes);
  return s.digest();
}
