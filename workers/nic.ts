/**
 * The NIC: a network card whose "wire" is a sink that checksums what it
 * transmits, and whose DMA engine addresses the process it is bound to by
 * virtual address (ImporterBinding.bind -> ctx.va()). The command ABI is
 * in src/devices/nic_abi.ts; the local memory layout in
 * src/shm/nic_layout.ts (NicMem).
 *
 * SEND: process memory -> packet buffer (DMA by VA, <= one slot per
 * chunk) -> sink checksum (four-lane word FNV-1a, src/devices/fnv.ts),
 * continued chunk to chunk.
 *
 * MONITOR reads a seqcount-protected ProgressRecord that a computing device
 * keeps in its own memory (RFC use case [B]: read without disturbing it):
 *
 *   writer (accelerator)                 NIC (MONITOR, one poll)
 *   --------------------                 -----------------------
 *   Atomics.store(seq, s + 1)            DMA-read the record (s1 = seq)
 *   store iteration, checksum, done      DMA-read seq again (s2)
 *   Atomics.store(seq, s + 2)            s1 odd or s1 != s2: torn, retry now
 *                                        else accept; DMA-write the sample
 *                                        wait the period (serving invalidations)
 *   [Required: no accepted sample mixes two updates of the record]
 *
 * Waiting between polls blocks in Atomics.wait on the NIC's wake word (not
 * a private word) with the period as deadline: an invalidation bumps that
 * word, so it is acked at once instead of after the period.
 *
 * Invariant: every DMA of a command goes through ctx.va() (or, for
 * registers, ctx.dma to a bus address); nothing is cached across commands
 * but the counters.
 */
import { DeviceCtl, DeviceStats } from '../src/shm/device_ctl.js';
import { CqStatus, type SqCommand } from '../src/shm/ring.js';
import { ProgressRecord } from '../src/shm/progress_record.js';
import { MonitorSample, NIC_PKT_SLOT_BYTES, NicMem, NIC_MEM_BYTES } from '../src/shm/nic_layout.js';
import { NIC_MON_MAX_SAMPLES, NIC_MON_PERIOD_US, NIC_MON_SPIN_TORN, NIC_MON_STUCK_MS, NIC_MON_TORN_SLEEP_MS, NIC_OP_MONITOR, NIC_OP_PREFETCH, NIC_OP_SEND, type NicCounters } from '../src/devices/nic_abi.js';
import { PAGE_SIZE } from '../src/shm/constants.js';
import { FAULT_WINDOW } from '../src/shm/tlb_layout.js';
import { StreamChecksum } from '../src/devices/models/checksum.js';
import { AccelSimd } from '../src/devices/models/accel_simd.js';
import type { CmdHandlers, NicOps } from '../src/devices/protocol.js';
import type { CommandResult } from './runtime/device_queues.js';
import type { DeviceContext, DeviceModel } from './runtime/device_model.js';
import { NicNvmeEngine } from './nic_nvme_engine.js';

/** Byte offsets into local memory (NicMem is in words). */
const REC_OFF = NicMem.record * 4;
const SEQ_OFF = NicMem.recordSeq * 4;
const SAMPLE_OFF = NicMem.sample * 4;
const PKT_OFF = NicMem.pkt * 4;

interface Counters {
  sent: number;
  sendChecksum: number;
  sends: number;
  samples: number;
  torn: number;
  nonMonotonic: number;
  monitors: number;
  /** Pages asked ahead by PREFETCH. */
  prefetched: number;
  /** SEND bytes checksummed by the WebAssembly kernel (NicCounters.simdBytes). */
  simdBytes: number;
}

/** The NIC. Lifetime: one per worker, built by createNic; nothing is cached across commands but the counters (and the NVMe engine's queue and IO log). */
class Nic implements DeviceModel {
  private readonly name: string;
  private readonly mem: Uint8Array;
  private readonly words: Int32Array;
  private readonly c: Counters = { sent: 0, sendChecksum: 0, sends: 0, samples: 0, torn: 0, nonMonotonic: 0, monitors: 0, prefetched: 0, simdBytes: 0 };
  private readonly nvme: NicNvmeEngine;
  /** The sink's checksum lanes in WebAssembly, in place in the packet buffer, when local memory is a WebAssembly.Memory. */
  private readonly simd: AccelSimd | null;

  constructor(private readonly ctx: DeviceContext) {
    this.name = ctx.self.name;
    const mem = ctx.self.mem;
    if (!mem || mem.length < NIC_MEM_BYTES) throw new Error(`${this.name}: a nic needs ${NIC_MEM_BYTES} bytes of local memory (staging + packet buffers), has ${mem?.length ?? 0}`);
    this.mem = mem;
    this.words = new Int32Array(mem.buffer, mem.byteOffset, NIC_MEM_BYTES / 4);
    this.nvme = new NicNvmeEngine(ctx, this.words);
    this.simd = ctx.self.memWasm ? new AccelSimd(ctx.self.memWasm) : null;
  }

  execute(cmd: SqCommand): CommandResult {
    switch (cmd.opcode) {
      case NIC_OP_SEND:
        return this.send(cmd);
      case NIC_OP_MONITOR:
        return this.monitor(cmd);
      case NIC_OP_PREFETCH:
        return this.prefetch(cmd);
      default:
        return this.nvme.execute(cmd) ?? { status: CqStatus.InvalidOpcode, result: this.ctx.logError(`${this.name}: unknown opcode ${cmd.opcode}`) };
    }
  }

  readonly commands = {
    'nic-counters': () => {
      const r: NicCounters = { errno: 0, ...this.c, ...this.nvme.counters() };
      return r;
    },
    'nic-iolog': (cmd) => this.nvme.iolog(cmd.first, cmd.count),
  } satisfies CmdHandlers<keyof NicOps>;

  private dataError(message: string): CommandResult {
    return { status: CqStatus.DataTransferError, result: this.ctx.logError(message) };
  }

  /**
   * nic_send: process memory -> packet buffer -> sink checksum. The run
   * token is held across the command's bursts and checksums (a core's
   * worth of work that never blocks), given back before each page request
   * (VaSpace.runs), when its quantum is used while others wait (RunToken.chunk)
   * and at the end: given back after every 64 KiB burst instead, eight
   * NICs queued and handed the token on 100-400 times a SEND pass
   * (hmm-peer-fanout), and between bursts all eight ran their checksums
   * at once on two cores.
   */
  private send(cmd: SqCommand): CommandResult {
    return this.ctx.dma.holding(cmd.len, () => this.sendBursts(cmd));
  }

  private sendBursts(cmd: SqCommand): CommandResult {
    const sum = new StreamChecksum(this.simd);
    for (let done = 0; done < cmd.len; ) {
      const n = Math.min(NIC_PKT_SLOT_BYTES, cmd.len - done);
      const err = this.ctx.va().read(cmd.src + done, PKT_OFF, n, cmd.src + cmd.len);
      if (err !== null) return this.dataError(`${this.name}: SEND of [0x${cmd.src.toString(16)}, +${cmd.len}) at +${done}: ${err}`);
      const t0 = performance.now();
      sum.update(this.mem.subarray(PKT_OFF, PKT_OFF + n));
      this.ctx.self.stats[DeviceStats.computeNs] += (performance.now() - t0) * 1e6;
      done += n;
    }
    const h = sum.digest();
    this.c.simdBytes += sum.kernelWords * 4;
    this.c.sent += cmd.len;
    this.c.sends++;
    this.c.sendChecksum = h | 0;
    return { status: CqStatus.Success, result: h | 0 };
  }

  /**
   * nic_prefetch (an ODP region's advise_mr PREFETCH): posts one page
   * request for the pages of [src, +len) the TLB cannot use, from the first
   * to the last (at most FAULT_WINDOW), and returns at once; the next fault
   * there collects the reply (DeviceTlb.prefetch: an invalidation of the
   * range before then voids it). Nothing missing, or a fault-ahead still
   * unanswered: nothing asked.
   */
  private prefetch(cmd: SqCommand): CommandResult {
    if (cmd.len <= 0) return { status: CqStatus.InvalidField, result: this.ctx.logError(`${this.name}: PREFETCH of ${cmd.len} bytes`) };
    const tlb = this.ctx.va().tlb;
    let first = Math.floor(cmd.src / PAGE_SIZE);
    let last = Math.ceil((cmd.src + cmd.len) / PAGE_SIZE) - 1;
    while (first <= last && tlb.usable(first, false)) first++;
    while (last > first && tlb.usable(last, false)) last--;
    // A fault-ahead already answered (say, of the other buffer) is installed first, to free its group.
    if (first > last || !tlb.collectAhead()) return { status: CqStatus.Success, result: 0 };
    const n = Math.min(FAULT_WINDOW, last - first + 1);
    // Refused when a request in flight already holds that window (an earlier PREFETCH not yet answered): nothing asked.
    if (!tlb.prefetch(first * PAGE_SIZE, n, false)) return { status: CqStatus.Success, result: 0 };
    this.c.prefetched += n;
    return { status: CqStatus.Success, result: n };
  }

  /** Sleeps until `ms` from now, acking invalidations as they come (they bump the wake word). */
  private sleepServing(ms: number): void {
    const deadline = performance.now() + ms;
    for (;;) {
      // Loaded before the check: pairs with ringWake in src/shm/device_ctl.ts.
      const seen = Atomics.load(this.ctx.self.ctl, DeviceCtl.wake);
      this.ctx.inv.check();
      const left = deadline - performance.now();
      if (left <= 0) return;
      Atomics.wait(this.ctx.self.ctl, DeviceCtl.wake, seen, left);
    }
  }

  /** One poll: DMA-reads the whole record, then its seq again; stable when s1 is even and unmoved (s1 == s2), or the DMA error. */
  private pollRecord(src: number): { stable: boolean; s1: number; s2: number } | string {
    let err = this.ctx.va().read(src, REC_OFF, ProgressRecord.kBytes);
    if (err === null) err = this.ctx.va().read(src + ProgressRecord.seq * 4, SEQ_OFF, 4);
    if (err !== null) return err;
    const s1 = this.words[NicMem.record + ProgressRecord.seq];
    const s2 = this.words[NicMem.recordSeq];
    return { stable: (s1 & 1) === 0 && s1 === s2, s1, s2 };
  }

  /** Writes the accepted record as sample `i` of the log at `dst`. */
  private writeSample(dst: number, i: number, torn: number): string | null {
    const w = this.words;
    const sw = NicMem.sample;
    w[sw + MonitorSample.iteration] = w[NicMem.record + ProgressRecord.iteration];
    w[sw + MonitorSample.checksum] = w[NicMem.record + ProgressRecord.checksum];
    w[sw + MonitorSample.torn] = torn;
    w[sw + MonitorSample.rsvd] = 0;
    return this.ctx.va().write(dst + i * MonitorSample.kBytes, SAMPLE_OFF, MonitorSample.kBytes);
  }

  /** nic_monitor: poll a ProgressRecord by seqcount (timeline at the top of the file); log the accepted samples. */
  private monitor(cmd: SqCommand): CommandResult {
    const periodUs = cmd.args[NIC_MON_PERIOD_US];
    const max = cmd.args[NIC_MON_MAX_SAMPLES];
    if (periodUs < 0 || max <= 0) return { status: CqStatus.InvalidField, result: this.ctx.logError(`${this.name}: MONITOR period ${periodUs} us, max samples ${max}`) };
    this.c.monitors++;
    let samples = 0;
    let torn = 0;
    let tornInARow = 0;
    let tornSince = 0;
    let last = -Infinity;
    const what = `${this.name}: MONITOR of the record at 0x${cmd.src.toString(16)}`;
    while (samples < max) {
      const poll = this.pollRecord(cmd.src);
      if (typeof poll === 'string') return this.dataError(`${what}: ${poll}`);
      if (!poll.stable) {
        torn++;
        this.c.torn++;
        if (tornInARow++ === 0) tornSince = performance.now();
        if (performance.now() - tornSince > NIC_MON_STUCK_MS) return this.dataError(`${what}: every read for ${NIC_MON_STUCK_MS} ms was torn (${tornInARow} in a row, seq ${poll.s1} -> ${poll.s2}): the writer seems stuck mid-update`);
        // Spin a little (an update takes under a microsecond), then give the writer's thread the CPU between retries.
        if (tornInARow > NIC_MON_SPIN_TORN) this.sleepServing(NIC_MON_TORN_SLEEP_MS);
        else this.ctx.inv.check();
        continue;
      }
      tornInARow = 0;
      const iteration = this.words[NicMem.record + ProgressRecord.iteration];
      if (iteration < last) this.c.nonMonotonic++;
      last = Math.max(last, iteration);
      const err = this.writeSample(cmd.dst, samples, torn);
      if (err !== null) return this.dataError(`${what}: sample ${samples}: ${err}`);
      samples++;
      this.c.samples++;
      if (this.words[NicMem.record + ProgressRecord.done] === 1) break;
      if (samples < max) this.sleepServing(periodUs / 1000);
    }
    return { status: CqStatus.Success, result: samples };
  }
}

export function createNic(ctx: DeviceContext): DeviceModel {
  return new Nic(ctx);
}
