/**
 * The accelerator: a compute device whose results and progress live in
 * its own memory, for RFC use case [B] ("a device reads another device's
 * memory without disturbing it") and the HMM path (process memory
 * migrated to the device as device-private pages). The command ABI is in
 * src/devices/accelerator_abi.ts, the kernel in src/devices/models/accel_simd.ts
 * (WebAssembly SIMD, in place in local memory when that is a
 * WebAssembly.Memory) or accel_kernel.ts (JS, otherwise).
 *
 * COMPUTE publishes progress the way a GPU kernel bumps a fence/progress
 * word a peer may poll — a seqcount over a small record in local memory,
 * written with Atomics (src/shm/progress_record.ts):
 *
 *   accelerator (publish)                 peer NIC (MONITOR, P2P read)
 *   ---------------------                 ----------------------------
 *   Atomics.store(seq, s + 1)   odd       DMA-read record (s1 = seq)
 *   store iteration, checksum, done       DMA-read seq again (s2)
 *   Atomics.store(seq, s + 2)   even      s1 odd or s1 != s2: torn, retry
 *   [Required: a reader never accepts a record whose seq was odd or moved]
 *
 * In bounce mode (ACC_F_MIRROR_VA) each publish is copied to system RAM by
 * three DMAs by VA in the same order — seq (odd), body, seq (even) — so
 * the RAM copy keeps the seqcount property for a reader there.
 *
 * Invariants: the model owns no memory (its driver names every buffer by
 * local offset); between iterations it serves pending invalidations
 * (ctx.inv.check), so a long COMPUTE never delays an ack by more than one
 * iteration; COMPUTE always finishes (a command blocks the device's
 * control calls until it completes).
 */
import { CqStatus, type SqCommand } from '../src/shm/ring.js';
import { DeviceStats } from '../src/shm/device_ctl.js';
import { PAGE_SIZE } from '../src/shm/constants.js';
import { FAULT_WINDOW, type ErrnoName } from '../src/shm/tlb_layout.js';
import { ProgressRecord } from '../src/shm/progress_record.js';
import { TraceEvent, traceSink } from '../src/shm/trace_ring.js';
import {
  ACC_ARG_FLAGS,
  ACC_ARG_ITERATIONS,
  ACC_ARG_MIRROR_HI,
  ACC_ARG_MIRROR_LO,
  ACC_ARG_PUBLISH,
  ACC_ARG_SEED,
  ACC_ARG_STAGE_PAGE,
  ACC_ARG_STAGE_PAGES,
  ACC_ARG_WORD0,
  ACC_F_INIT,
  ACC_F_MIRROR_VA,
  ACC_OP_COMPUTE,
  ACC_OP_COPY_TO_VA,
  ACC_OP_DMA_IN,
  ACC_OP_TRANSFORM_VA,
  vaFromArgs,
  type AccCounters,
} from '../src/devices/accelerator_abi.js';
import { AccelSimd } from '../src/devices/models/accel_simd.js';
import { accelInit, accelInitStep, accelStep, accelTransform, checksumWords } from '../src/devices/models/accel_kernel.js';
import type { AcceleratorOps, CmdHandlers } from '../src/devices/protocol.js';
import type { CommandResult } from './runtime/device_queues.js';
import type { DeviceContext, DeviceModel } from './runtime/device_model.js';
import { ownLocalRange } from './runtime/local_view.js';

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/** The accelerator. Lifetime: one per worker, built by createAccelerator; keeps nothing across commands but its counters. */
class Accelerator implements DeviceModel {
  private readonly name: string;
  private readonly mem: Uint8Array;
  private readonly words: Int32Array;
  /** The WebAssembly SIMD kernels, in place in local memory when it is a WebAssembly.Memory (else the JS kernels run). */
  private readonly simd: AccelSimd | null;
  /** Test knob (x- prefix): after this iteration of every COMPUTE (and every TRANSFORM), flip bit 0 of word corruptWord. */
  private readonly corruptAt: number | undefined;
  private readonly corruptWord: number;
  private readonly c: Mutable<AccCounters> = { errno: 0, computes: 0, iterations: 0, publishes: 0, mirrored: 0, lastComputeUs: 0, lastIterations: 0, transforms: 0, simdPasses: 0 };

  constructor(private readonly ctx: DeviceContext) {
    this.name = ctx.self.name;
    const mem = ctx.self.mem;
    if (!mem || mem.length < PAGE_SIZE) throw new Error(`${this.name}: an accelerator needs local memory (buffers, progress records), has ${mem?.length ?? 0} bytes`);
    this.mem = mem;
    // / 4, not >> 2: a memory above 2 GiB made that negative (RangeError), one of 4 GiB made it 0 (an empty view).
    this.words = new Int32Array(mem.buffer, mem.byteOffset, Math.floor(mem.length / 4));
    this.simd = ctx.self.memWasm && mem.byteOffset === 0 ? new AccelSimd(ctx.self.memWasm) : null;
    this.corruptAt = ctx.props['x-corrupt-iteration'] as number | undefined;
    this.corruptWord = (ctx.props['x-corrupt-word'] as number | undefined) ?? 0;
  }

  execute(cmd: SqCommand): CommandResult {
    switch (cmd.opcode) {
      case ACC_OP_COMPUTE:
        return this.compute(cmd);
      case ACC_OP_COPY_TO_VA:
        return this.copyToVa(cmd);
      case ACC_OP_TRANSFORM_VA:
        return this.transformVa(cmd);
      case ACC_OP_DMA_IN:
        return this.dmaIn(cmd);
      default:
        return { status: CqStatus.InvalidOpcode, result: this.ctx.logError(`${this.name}: unknown opcode ${cmd.opcode}`) };
    }
  }

  readonly commands = {
    'acc-counters': () => ({ ...this.c }),
  } satisfies CmdHandlers<keyof AcceleratorOps>;

  private dataError(message: string): CommandResult {
    return { status: CqStatus.DataTransferError, result: this.ctx.logError(message) };
  }

  private badField(message: string): CommandResult {
    return { status: CqStatus.InvalidField, result: this.ctx.logError(`${this.name}: ${message}`) };
  }

  private inLocal(off: number, len: number): boolean {
    return off >= 0 && len >= 0 && off % 4 === 0 && off + len <= this.mem.length;
  }

  /** x-corrupt-iteration: the device bug the CPU reference must catch. */
  private maybeCorrupt(x: Int32Array, k: number): void {
    if (this.corruptAt !== undefined && k === this.corruptAt && x.length > 0) x[this.corruptWord % x.length] ^= 1;
  }

  /** One seqcount update of the record at word `r`; mirrored to `va` when not null. */
  private publish(r: number, va: number | null, k: number, h: number, done: number): string | null {
    const s = Atomics.load(this.words, r + ProgressRecord.seq);
    // Odd first: pairs with the reader's first seq load (NIC MONITOR, s1).
    Atomics.store(this.words, r + ProgressRecord.seq, (s + 1) | 0);
    if (va !== null) {
      const err = this.ctx.va().write(va + ProgressRecord.seq * 4, (r + ProgressRecord.seq) * 4, 4);
      if (err !== null) return err;
    }
    Atomics.store(this.words, r + ProgressRecord.iteration, k);
    Atomics.store(this.words, r + ProgressRecord.checksum, h | 0);
    Atomics.store(this.words, r + ProgressRecord.done, done);
    if (va !== null) {
      const err = this.ctx.va().write(va + ProgressRecord.iteration * 4, (r + ProgressRecord.iteration) * 4, ProgressRecord.kBytes - 4);
      if (err !== null) return err;
    }
    // Even last: pairs with the reader's second seq load (s2).
    Atomics.store(this.words, r + ProgressRecord.seq, (s + 2) | 0);
    if (va !== null) {
      const err = this.ctx.va().write(va + ProgressRecord.seq * 4, (r + ProgressRecord.seq) * 4, 4);
      if (err !== null) return err;
      this.c.mirrored++;
    }
    this.c.publishes++;
    return null;
  }

  private compute(cmd: SqCommand): CommandResult {
    const iterations = cmd.args[ACC_ARG_ITERATIONS];
    const seed = cmd.args[ACC_ARG_SEED];
    const every = cmd.args[ACC_ARG_PUBLISH];
    const flags = cmd.args[ACC_ARG_FLAGS];
    const bad = this.checkCompute(cmd, every, iterations, flags);
    if (bad) return bad;
    const r = cmd.dst / 4;
    const mirror = flags & ACC_F_MIRROR_VA ? vaFromArgs(cmd.args[ACC_ARG_MIRROR_LO], cmd.args[ACC_ARG_MIRROR_HI]) : null;
    const x = this.words.subarray(cmd.src / 4, (cmd.src + cmd.len) / 4);
    const t0 = performance.now();
    const dma0 = this.ctx.self.stats[DeviceStats.dmaNs];
    // Seeding and iteration 1 in one pass when both run (accelInitStep); a
    // checksum only where it is the result (the last one computed).
    const fused = (flags & ACC_F_INIT) !== 0 && iterations > 0;
    let h = fused ? this.initStep(x, seed) : flags & ACC_F_INIT ? this.init(x, seed) : iterations > 0 ? 0 : this.checksum(x);
    for (let k = 1; k <= iterations; k++) {
      if (k > 1 || !fused) h = this.step(x, k, seed);
      this.maybeCorrupt(x, k);
      if (every > 0 && (k % every === 0 || k === iterations)) {
        const err = this.publish(r, mirror, k, h, k === iterations ? 1 : 0);
        if (err !== null) return this.dataError(`${this.name}: COMPUTE progress mirror to 0x${mirror!.toString(16)} at iteration ${k}: ${err}`);
      }
      this.c.iterations++;
      this.ctx.inv.check();
    }
    const ms = performance.now() - t0;
    // Mirror DMAs are already in dmaNs.
    this.ctx.self.stats[DeviceStats.computeNs] += ms * 1e6 - (this.ctx.self.stats[DeviceStats.dmaNs] - dma0);
    traceSink.w?.emit(TraceEvent.Compute, performance.timeOrigin + t0, ms, x.byteLength);
    this.c.computes++;
    this.c.lastComputeUs = ms * 1000;
    this.c.lastIterations = iterations;
    return { status: CqStatus.Success, result: h | 0 };
  }

  // The kernels on x, a view of local memory: SIMD in place when there is a module, else JS (same results, tested).
  // Each returns the kernel's checksum; simdPass() counts the WebAssembly passes (simdPasses: which kernels ran, for the tests).
  private initStep(x: Int32Array, seed: number): number {
    const simd = this.simdPass();
    return simd ? simd.initStep(x.byteOffset, x.length, seed) : accelInitStep(x, seed);
  }

  private init(x: Int32Array, seed: number): number {
    const simd = this.simdPass();
    return simd ? simd.init(x.byteOffset, x.length, seed) : accelInit(x, seed);
  }

  private step(x: Int32Array, k: number, seed: number): number {
    const simd = this.simdPass();
    return simd ? simd.step(x.byteOffset, x.length, k, seed) : accelStep(x, k, seed);
  }

  private checksum(x: Int32Array): number {
    const simd = this.simdPass();
    return simd ? simd.checksum(x.byteOffset, x.length) : checksumWords(x);
  }

  /** The WebAssembly kernels, counting the pass they are about to run; null when the JS ones run. */
  private simdPass(): AccelSimd | null {
    if (this.simd) this.c.simdPasses++;
    return this.simd;
  }

  /** The failure COMPUTE gets before it touches the buffer (range, counts, record placement, mirror without publishing), or null. */
  private checkCompute(cmd: SqCommand, every: number, iterations: number, flags: number): CommandResult | null {
    if (!this.inLocal(cmd.src, cmd.len) || cmd.len % 4 !== 0 || cmd.len === 0) return this.badField(`COMPUTE buffer [${cmd.src}, +${cmd.len}) must be 4-aligned words inside ${this.mem.length} bytes of local memory`);
    if (iterations < 0 || every < 0) return this.badField(`COMPUTE of ${iterations} iterations, publishing every ${every}`);
    if (every > 0) {
      if (!this.inLocal(cmd.dst, ProgressRecord.kBytes)) return this.badField(`COMPUTE progress record at ${cmd.dst} is not 4-aligned inside local memory`);
      if (cmd.dst < cmd.src + cmd.len && cmd.src < cmd.dst + ProgressRecord.kBytes) return this.badField(`COMPUTE progress record at ${cmd.dst} overlaps the buffer [${cmd.src}, +${cmd.len})`);
    }
    if (flags & ACC_F_MIRROR_VA && every === 0) return this.badField('COMPUTE mirrors its progress record but publishes none (publish every 0)');
    return null;
  }

  private copyToVa(cmd: SqCommand): CommandResult {
    if (!this.inLocal(cmd.src, cmd.len)) return this.badField(`COPY_TO_VA source [${cmd.src}, +${cmd.len}) outside local memory`);
    const err = this.ctx.va().write(cmd.dst, cmd.src, cmd.len);
    if (err !== null) return this.dataError(`${this.name}: COPY_TO_VA of ${cmd.len} bytes to 0x${cmd.dst.toString(16)}: ${err}`);
    return { status: CqStatus.Success, result: 0 };
  }

  private dmaIn(cmd: SqCommand): CommandResult {
    if (!this.inLocal(cmd.dst, cmd.len)) return this.badField(`DMA_IN destination [${cmd.dst}, +${cmd.len}) outside local memory`);
    const err = this.ctx.dma.read(cmd.src, cmd.dst, cmd.len);
    if (err !== null) return this.dataError(err);
    return { status: CqStatus.Success, result: 0 };
  }

  /**
   * TRANSFORM writes back every page it reads, so it asks for [start, end)
   * writable up front, FAULT_WINDOW pages a page request (an ATS-style range
   * request), the way NVME_ATTACH does: not a read fault and then a write
   * fault per staging chunk (128 round trips to the kernel for 1024 pages
   * through 16 staging pages, against 2), and none for pages whose
   * translations it holds already (our own pages, posted by the driver at
   * migration: dmirror_migrate_finalize_and_map). Pages an invalidation takes later
   * are refaulted by the reads and writes as usual.
   */
  private faultWritable(start: number, end: number): 0 | ErrnoName {
    const va = this.ctx.va();
    const first = Math.floor(start / PAGE_SIZE);
    const last = Math.ceil(end / PAGE_SIZE);
    for (let p = first; p < last; p += FAULT_WINDOW) {
      const n = Math.min(FAULT_WINDOW, last - p);
      // Pages migrated to us come with their translations (the driver's post, DeviceTlb.collectMap): no request.
      if (va.tlb.allUsable(p, n, true)) continue;
      const r = va.tlb.fault(p * PAGE_SIZE, n, true);
      if (r !== 0) return r;
    }
    return 0;
  }

  private transformVa(cmd: SqCommand): CommandResult {
    const stage = cmd.args[ACC_ARG_STAGE_PAGE] * PAGE_SIZE;
    const stageBytes = cmd.args[ACC_ARG_STAGE_PAGES] * PAGE_SIZE;
    const seed = cmd.args[ACC_ARG_SEED];
    const word0 = cmd.args[ACC_ARG_WORD0];
    if (cmd.len % 4 !== 0 || stageBytes <= 0 || !this.inLocal(stage, stageBytes)) return this.badField(`TRANSFORM of ${cmd.len} bytes through ${stageBytes} staging bytes at ${stage}`);
    const end = cmd.src + cmd.len;
    const pre = this.faultWritable(cmd.src, end);
    if (pre !== 0) return this.dataError(`${this.name}: TRANSFORM of [0x${cmd.src.toString(16)}, +${cmd.len}): page request: ${pre}`);
    for (let done = 0; done < cmd.len; ) {
      const n = Math.min(stageBytes, cmd.len - done);
      // Our own device-private pages are transformed where they are (workers/runtime/local_view.ts: no check() until done).
      const own = ownLocalRange(this.ctx.va().tlb, this.ctx.self, cmd.src + done, n, true);
      if (own >= 0 && own % 4 === 0) {
        this.transformAt(own, n, word0, done, seed);
        this.ctx.inv.check();
        done += n;
        continue;
      }
      let err = this.ctx.va().read(cmd.src + done, stage, n, end);
      if (err !== null) return this.dataError(`${this.name}: TRANSFORM read of 0x${(cmd.src + done).toString(16)}: ${err}`);
      this.transformAt(stage, n, word0, done, seed);
      err = this.ctx.va().write(cmd.src + done, stage, n, end);
      if (err !== null) return this.dataError(`${this.name}: TRANSFORM write of 0x${(cmd.src + done).toString(16)}: ${err}`);
      done += n;
    }
    this.c.transforms++;
    return { status: CqStatus.Success, result: 0 };
  }

  /** accelTransform of local bytes [off, +n), byte `done` of the command's range (word `word0 + done / 4` of the transform), timed as compute. */
  private transformAt(off: number, n: number, word0: number, done: number, seed: number): void {
    const x = this.words.subarray(off / 4, (off + n) / 4);
    const t0 = performance.now();
    const simd = this.simdPass();
    if (simd) simd.transform(x.byteOffset, x.length, word0 + done / 4, seed);
    else accelTransform(x, word0 + done / 4, seed);
    if (done === 0) this.maybeCorrupt(x, this.corruptAt ?? -1);
    this.ctx.self.stats[DeviceStats.computeNs] += (performance.now() - t0) * 1e6;
    traceSink.w?.emit(TraceEvent.Compute, performance.timeOrigin + t0, performance.now() - t0, x.byteLength);
  }
}

export function createAccelerator(ctx: DeviceContext): DeviceModel {
  return new Accelerator(ctx);
}
