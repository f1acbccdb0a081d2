/**
 * The NIC's NVMe-driving engine: RFC workload (1), "a NIC drives an NVMe
 * queue, no CPU" (use case [A]), and the NIC half of its bounce path.
 * Opcodes and arguments: src/devices/nic_abi.ts; the NVMe side:
 * workers/nvme.ts (its header has the CMB queue timeline).
 *
 * P2P path (NVME_ATTACH once, then NVME_RUN): the queue lives in the
 * NVMe's controller memory buffer, which the NIC reaches by process VA
 * through its device TLB (the VMA is the NVMe driver's export; the NIC is
 * its one allowed importer). Per request, with up to `qdepth` in flight:
 *
 *   NIC                                     NVMe
 *   ---                                     ----
 *   WRITE: client data -> packet buffer
 *          VA-write -> CMB data slot
 *   VA-write the batch's SQEs -> CMB SQ[tail..] (one DMA per stretch)
 *   DMA-write tail -> NVMe BAR0 sqTail ---> execute in order (CMB <-> blocks)
 *   seen = wake; VA-read CQEs[head..]       post CQE (status word last)
 *   no new phase: Atomics.wait(wake, seen) <--- MSI: DMA-write -> NIC BAR0
 *   new phase, cid == oldest in flight:         NIC_MSI_REG (+ wake)
 *     READ: VA-read CMB data slot, checksum
 *     log; head++
 *   (next pass: submit, SQ tail doorbell, then)
 *   DMA-write head -> NVMe BAR0 cqHead
 *   [Required: a data slot is reused only after its request's CQE was
 *    consumed (and, for a READ, its data read); the CQ head doorbell is
 *    written only after the entries before it were read]
 *
 * The CQE is read by a DMA copy that is not atomic; only its status word
 * (cid, phase, status — one aligned 32-bit word, stored last by the NVMe
 * with Atomics.store) is used, and its cid must be the oldest request in
 * flight, else the entry is treated as not posted yet.
 *
 * Bounce path (RECV, XMIT): no queue of its own; the kernel stages the data
 * in system RAM and drives the NVMe from a host queue (src/workloads/
 * nic_nvme/run.ts). Both paths fill the same IO log, so one checker
 * (src/workloads/nic_nvme/check.ts) judges both.
 */
import { DeviceCtl, DeviceRegs, DeviceStats, deviceRegByte } from '../src/shm/device_ctl.js';
import { PAGE_SIZE } from '../src/shm/constants.js';
import { FAULT_WINDOW } from '../src/shm/tlb_layout.js';
import { CqEntry, CqStatus, SQE_BYTES, CQE_BYTES, CQE_WORDS, writeSqe, type SqCommand } from '../src/shm/ring.js';
import { NicIoLog, NicMem, NIC_IOLOG_DONE, NIC_PKT_SLOT_BYTES, NIC_QE_BATCH } from '../src/shm/nic_layout.js';
import {
  NIC_ARG_BLOCKS,
  NIC_ARG_BLOCKS_PER_IO,
  NIC_ARG_CQ_OFFSET,
  NIC_ARG_DATA_BYTES,
  NIC_ARG_DATA_OFFSET,
  NIC_ARG_ENTRIES,
  NIC_ARG_IO,
  NIC_ARG_IO_BYTES,
  NIC_ARG_IOS,
  NIC_ARG_QDEPTH,
  NIC_ARG_QID,
  NIC_ARG_SEED,
  NIC_ARG_WRITE_PCT,
  NIC_MSI_REG,
  NIC_NVME_STALL_MS,
  NIC_OP_NVME_ATTACH,
  NIC_OP_NVME_RUN,
  NIC_OP_RECV,
  NIC_OP_XMIT,
  NIC_RECV_WRITE,
} from '../src/devices/nic_abi.js';
import { NVME_ARG_FLAGS, NVME_ARG_LBA, NVME_F_CMB, NVME_OP_READ, NVME_OP_WRITE } from '../src/devices/nvme_abi.js';
import { clientPayload, clientRequest } from '../src/devices/models/nic_client.js';
import type { ClientStream } from '../src/devices/nic_abi.js';
import { checksum } from '../src/devices/models/checksum.js';
import type { NicNvmeCounters } from '../src/devices/nic_abi.js';
import type { CommandResult } from './runtime/device_queues.js';
import type { DeviceContext } from './runtime/device_model.js';

/** The attached CMB queue, as NVME_ATTACH described it. */
interface PeerQueue {
  readonly qid: number;
  readonly entries: number;
  readonly sqVa: number;
  readonly cqVa: number;
  readonly dataVa: number;
  readonly dataBytes: number;
  readonly doorbellBase: number;
  /** Producer/consumer state; survives across NVME_RUN commands. */
  tail: number;
  head: number;
  phase: number;
}

interface InFlight {
  readonly io: number;
  readonly write: boolean;
  readonly lba: number;
  readonly slotOff: number;
}

const SQE_OFF = NicMem.sqe * 4;
const CQE_OFF = NicMem.cqe * 4;
const DB_OFF = NicMem.doorbell * 4;
const PKT_OFF = NicMem.pkt * 4;
/** Longest single sleep while the queue is busy (a lost MSI costs this, not a hang). */
const WAIT_SLICE_MS = 20;

/** One NVME_RUN in progress: the client stream, its limits, and the requests in flight (oldest first). */
interface Run {
  readonly stream: ClientStream;
  readonly q: PeerQueue;
  readonly ios: number;
  readonly ioBytes: number;
  readonly depth: number;
  /** The packet buffer: WRITE data on its way out, READ data on its way in. */
  readonly pkt: Uint8Array;
  readonly flight: InFlight[];
  /** Next request to submit; requests completed. */
  next: number;
  done: number;
}

/**
 * The engine: the attached queue, the IO log and the counters of one NIC.
 * Lifetime: created with the NIC model; the queue survives across NVME_RUN
 * commands (NVME_ATTACH replaces it); the IO log grows with the highest
 * request number seen and is read out by deviceCmd 'nic-iolog'.
 */
export class NicNvmeEngine {
  private readonly name: string;
  private readonly mem: Uint8Array;
  private readonly sqeView: Int32Array;
  private q: PeerQueue | null = null;
  private log = new Int32Array(0);
  private readonly c = { ios: 0, ioReads: 0, ioWrites: 0, sqDoorbells: 0, cqDoorbells: 0, emptyCqPolls: 0, waits: 0, recvs: 0, xmits: 0 };

  constructor(
    private readonly ctx: DeviceContext,
    /** The NIC's local memory as words (NicMem). */
    private readonly words: Int32Array,
  ) {
    this.name = ctx.self.name;
    this.mem = ctx.self.mem!;
    this.sqeView = words.subarray(NicMem.sqe, NicMem.sqe + (NIC_QE_BATCH * SQE_BYTES) / 4);
  }

  /** Executes an NVMe-stream opcode; null when the opcode is not one of its own. */
  execute(cmd: SqCommand): CommandResult | null {
    switch (cmd.opcode) {
      case NIC_OP_NVME_ATTACH:
        return this.attach(cmd);
      case NIC_OP_NVME_RUN:
        return this.run(cmd);
      case NIC_OP_RECV:
        return this.recv(cmd);
      case NIC_OP_XMIT:
        return this.xmit(cmd);
      default:
        return null;
    }
  }

  /** NicIoLog entries [first, first + count) (deviceCmd 'nic-iolog'). */
  iolog(first = 0, count = this.log.length / NicIoLog.kFieldCount - first): { readonly errno: 0; readonly log: Int32Array } {
    const out = new Int32Array(Math.max(0, count) * NicIoLog.kFieldCount);
    out.set(this.log.subarray(first * NicIoLog.kFieldCount, Math.min(this.log.length, (first + count) * NicIoLog.kFieldCount)));
    return { errno: 0, log: out };
  }

  counters(): NicNvmeCounters {
    return { ...this.c, msi: Atomics.load(this.ctx.self.regs, NIC_MSI_REG) };
  }

  /** Adds the time since t0 (generating client data, checksumming) to the device-compute stage. */
  private computed(t0: number): void {
    this.ctx.self.stats[DeviceStats.computeNs] += (performance.now() - t0) * 1e6;
  }

  private dataError(message: string): CommandResult {
    return { status: CqStatus.DataTransferError, result: this.ctx.logError(`${this.name}: ${message}`) };
  }

  private badField(message: string): CommandResult {
    return { status: CqStatus.InvalidField, result: this.ctx.logError(`${this.name}: ${message}`) };
  }

  private streamOf(cmd: SqCommand): ClientStream | string {
    const s = { seed: cmd.args[NIC_ARG_SEED] >>> 0, blocks: cmd.args[NIC_ARG_BLOCKS], blocksPerIo: cmd.args[NIC_ARG_BLOCKS_PER_IO], writePct: cmd.args[NIC_ARG_WRITE_PCT] };
    if (s.blocksPerIo <= 0 || s.blocks < s.blocksPerIo || s.writePct < 0 || s.writePct > 100) return `client stream of ${s.blocks} blocks, ${s.blocksPerIo} per IO, ${s.writePct}% writes`;
    return s;
  }

  /** Makes sure the IO log holds entry `io`; returns its first word. */
  private logEntry(io: number): number {
    const need = (io + 1) * NicIoLog.kFieldCount;
    if (this.log.length < need) {
      const grown = new Int32Array(Math.max(need, this.log.length * 2, 1024 * NicIoLog.kFieldCount));
      grown.set(this.log);
      this.log = grown;
    }
    return io * NicIoLog.kFieldCount;
  }

  /** Logs request `io` as submitted (not done yet), on either path. */
  private logSubmitted(io: number, opcode: number, lba: number): void {
    const e = this.logEntry(io);
    this.log[e + NicIoLog.opcode] = opcode;
    this.log[e + NicIoLog.lba] = lba;
    this.log[e + NicIoLog.checksum] = 0;
    this.log[e + NicIoLog.flags] = 0;
  }

  /** Writes a doorbell register of the attached NVMe (aligned 32-bit DMA write to its BAR0). */
  private ring(q: PeerQueue, reg: number, value: number): string | null {
    this.words[NicMem.doorbell] = value;
    return this.ctx.dma.write(q.doorbellBase + deviceRegByte(reg), DB_OFF, 4);
  }

  private attach(cmd: SqCommand): CommandResult {
    const entries = cmd.args[NIC_ARG_ENTRIES];
    const cqOff = cmd.args[NIC_ARG_CQ_OFFSET];
    const dataOff = cmd.args[NIC_ARG_DATA_OFFSET];
    const dataBytes = cmd.args[NIC_ARG_DATA_BYTES];
    if (entries < 2 || cqOff < entries * SQE_BYTES || dataOff < cqOff + entries * CQE_BYTES || dataOff + dataBytes > cmd.len) return this.badField(`NVME_ATTACH: queue area of ${cmd.len} bytes with ${entries} entries, CQ at +${cqOff}, data [+${dataOff}, +${dataBytes})`);
    // Prefault the whole area (writable): the stream then runs on TLB hits.
    const npages = Math.ceil(cmd.len / PAGE_SIZE);
    const va = this.ctx.va();
    for (let i = 0; i < npages; i += FAULT_WINDOW) {
      const r = va.tlb.fault(cmd.src + i * PAGE_SIZE, Math.min(FAULT_WINDOW, npages - i), true);
      if (r !== 0) return this.dataError(`NVME_ATTACH: faulting the queue area at 0x${(cmd.src + i * PAGE_SIZE).toString(16)}: ${r}`);
    }
    this.q = { qid: cmd.args[NIC_ARG_QID], entries, sqVa: cmd.src, cqVa: cmd.src + cqOff, dataVa: cmd.src + dataOff, dataBytes, doorbellBase: cmd.dst, tail: 0, head: 0, phase: 1 };
    return { status: CqStatus.Success, result: npages };
  }

  /** NVME_RUN's arguments checked against the attached queue, or what is wrong with them. */
  private startRun(cmd: SqCommand, q: PeerQueue): Run | string {
    const stream = this.streamOf(cmd);
    if (typeof stream === 'string') return `NVME_RUN: ${stream}`;
    const ios = cmd.args[NIC_ARG_IOS];
    const ioBytes = cmd.args[NIC_ARG_IO_BYTES];
    const depth = Math.min(cmd.args[NIC_ARG_QDEPTH], q.entries - 1);
    if (ios < 0 || depth < 1 || ioBytes <= 0 || ioBytes % 4 !== 0 || ioBytes > NIC_PKT_SLOT_BYTES || depth * ioBytes > q.dataBytes) return `NVME_RUN: ${ios} IOs of ${ioBytes} bytes, depth ${depth}, with a ${q.dataBytes}-byte CMB data area and ${NIC_PKT_SLOT_BYTES}-byte packet slots`;
    return { stream, q, ios, ioBytes, depth, pkt: this.mem.subarray(PKT_OFF, PKT_OFF + ioBytes), flight: [], next: 0, done: 0 };
  }

  /**
   * nic_nvme_run: the whole client stream against the peer queue. Each pass
   * reaps what completed, submits while there is room (the slots just
   * freed included), then rings the SQ tail doorbell for the batch and
   * after it the CQ head doorbell; it sleeps on the wake word only when
   * nothing moved. See the timeline at the top of the file.
   *
   * Why this order: every BAR0 write wakes the NVMe's loop. Rung first
   * (as it was), the CQ head woke the NVMe to find no new command and
   * sleep again, and the SQ tail woke it once more a few microseconds
   * later: two scheduler round trips per batch where one does, which
   * under load cost more than the data. The CQ head only has to move
   * before the CQ could fill, and a queue of `entries` holds every
   * request in flight (depth < entries), so one pass late is safe.
   */
  private run(cmd: SqCommand): CommandResult {
    if (!this.q) return this.badField('NVME_RUN before NVME_ATTACH');
    const r = this.startRun(cmd, this.q);
    if (typeof r === 'string') return this.badField(r);
    const q = r.q;
    let lastProgress = performance.now();
    while (r.done < r.ios) {
      // `seen` is loaded before the CQ is looked at: pairs with the MSI's
      // ringWake (dma_engine doorbell) in workers/nvme.ts.
      const seen = Atomics.load(this.ctx.self.ctl, DeviceCtl.wake);
      const reaped = this.reap(r);
      if (typeof reaped === 'string') return this.dataError(reaped);
      const submitted = this.submit(r);
      if (typeof submitted === 'string') return this.dataError(submitted);
      if (submitted > 0) {
        const err = this.ring(q, DeviceRegs.sqTail + q.qid, q.tail);
        if (err) return this.dataError(`SQ tail doorbell: ${err}`);
        this.c.sqDoorbells++;
      }
      if (reaped > 0) {
        const err = this.ring(q, DeviceRegs.cqHead + q.qid, q.head);
        if (err) return this.dataError(`CQ head doorbell: ${err}`);
        this.c.cqDoorbells++;
        lastProgress = performance.now();
      }
      if (reaped > 0 || submitted > 0) continue;
      if (performance.now() - lastProgress > NIC_NVME_STALL_MS) return this.dataError(`NVME_RUN: the NVMe posted no completion for ${NIC_NVME_STALL_MS} ms (${r.flight.length} in flight, oldest request ${r.flight[0]?.io})`);
      this.ctx.inv.check();
      this.c.waits++;
      Atomics.wait(this.ctx.self.ctl, DeviceCtl.wake, seen, WAIT_SLICE_MS);
    }
    return { status: CqStatus.Success, result: r.done };
  }

  /**
   * Writes requests into the CMB SQ while the depth allows; returns how
   * many, or an error. The SQEs are staged in NicMem.sqe and written with
   * one DMA per contiguous stretch of the ring (at most NIC_QE_BATCH), all
   * before the caller rings the tail doorbell, which is what makes them
   * visible to the NVMe.
   */
  private submit(r: Run): number | string {
    const { q, ioBytes } = r;
    const va = this.ctx.va();
    let submitted = 0;
    let staged = 0;
    let first = q.tail;
    while (r.next < r.ios && r.flight.length < r.depth) {
      const io = r.next;
      const req = clientRequest(r.stream, io);
      const slotOff = (io % r.depth) * ioBytes;
      if (req.write) {
        const t0 = performance.now();
        clientPayload(r.stream, io, r.pkt);
        this.computed(t0);
        const err = va.write(q.dataVa + slotOff, PKT_OFF, ioBytes);
        if (err) return `request ${io}: WRITE data to the CMB: ${err}`;
      }
      const opcode = req.write ? NVME_OP_WRITE : NVME_OP_READ;
      const args = [0, 0];
      args[NVME_ARG_LBA] = req.lba;
      args[NVME_ARG_FLAGS] = NVME_F_CMB;
      writeSqe(this.sqeView, staged++, { opcode, cid: io & 0xffff, src: req.write ? slotOff : 0, dst: req.write ? 0 : slotOff, len: ioBytes, args });
      q.tail = (q.tail + 1) % q.entries;
      this.logSubmitted(io, opcode, req.lba);
      r.flight.push({ io, write: req.write, lba: req.lba, slotOff });
      r.next++;
      submitted++;
      if (staged === NIC_QE_BATCH || q.tail === 0) {
        const err = va.write(q.sqVa + first * SQE_BYTES, SQE_OFF, staged * SQE_BYTES);
        if (err) return `requests ${io - staged + 1}..${io}: SQEs to the CMB SQ: ${err}`;
        staged = 0;
        first = q.tail;
      }
    }
    if (staged > 0) {
      const err = va.write(q.sqVa + first * SQE_BYTES, SQE_OFF, staged * SQE_BYTES);
      if (err) return `requests ${r.next - staged}..${r.next - 1}: SQEs to the CMB SQ: ${err}`;
    }
    return submitted;
  }

  /**
   * Consumes the completions posted for the oldest requests in flight, in
   * order (a READ's data is read and checksummed before its slot can be
   * reused); returns how many, or an error. The CQEs are DMA-read up to
   * NIC_QE_BATCH at once (never past the end of the ring); entries the
   * NVMe had not posted yet when they were read stop the pass and are read
   * again on the next one.
   */
  private reap(r: Run): number | string {
    const { q } = r;
    const va = this.ctx.va();
    let reaped = 0;
    while (r.flight.length > 0) {
      const k = Math.min(r.flight.length, NIC_QE_BATCH, q.entries - q.head);
      const err = va.read(q.cqVa + q.head * CQE_BYTES, CQE_OFF, k * CQE_BYTES);
      if (err) return `CQEs ${q.head}..${q.head + k - 1}: ${err}`;
      let j = 0;
      for (; j < k; j++) {
        const st = this.words[NicMem.cqe + j * CQE_WORDS + CqEntry.status];
        const f = r.flight[0];
        if (((st >>> 16) & 1) !== q.phase || (st & 0xffff) !== (f.io & 0xffff)) break;
        const done = this.complete(r, f, st >>> 17);
        if (done !== null) return done;
        r.flight.shift();
        q.head = (q.head + 1) % q.entries;
        if (q.head === 0) q.phase ^= 1;
        reaped++;
      }
      if (j < k) {
        if (reaped === 0) this.c.emptyCqPolls++;
        break;
      }
    }
    return reaped;
  }

  /** Request f's completion (status from its CQE): a READ's data is read from its CMB slot and checksummed; logged done. Null, or an error. */
  private complete(r: Run, f: InFlight, status: number): string | null {
    if (status !== CqStatus.Success) return `request ${f.io} (${f.write ? 'WRITE' : 'READ'} lba ${f.lba}): NVMe completion status ${status}`;
    const e = this.logEntry(f.io);
    if (!f.write) {
      const err = this.ctx.va().read(r.q.dataVa + f.slotOff, PKT_OFF, r.ioBytes);
      if (err) return `request ${f.io}: READ data from the CMB: ${err}`;
      const t0 = performance.now();
      this.log[e + NicIoLog.checksum] = checksum(r.pkt) | 0;
      this.computed(t0);
      this.c.ioReads++;
    } else this.c.ioWrites++;
    this.log[e + NicIoLog.flags] = NIC_IOLOG_DONE;
    r.done++;
    this.c.ios++;
    return null;
  }

  /** Bounce path: request `io` of the stream arrives; a WRITE's data is DMAed to dst (RAM). */
  private recv(cmd: SqCommand): CommandResult {
    const s = this.streamOf(cmd);
    if (typeof s === 'string') return this.badField(`RECV: ${s}`);
    const io = cmd.args[NIC_ARG_IO];
    if (io < 0 || cmd.len <= 0 || cmd.len % 4 !== 0 || cmd.len > NIC_PKT_SLOT_BYTES) return this.badField(`RECV of request ${io}, ${cmd.len} bytes`);
    const req = clientRequest(s, io);
    if (req.write) {
      const t0 = performance.now();
      clientPayload(s, io, this.mem.subarray(PKT_OFF, PKT_OFF + cmd.len));
      this.computed(t0);
      const err = this.ctx.dma.write(cmd.dst, PKT_OFF, cmd.len);
      if (err) return this.dataError(`RECV of request ${io}: ${err}`);
    }
    this.logSubmitted(io, req.write ? NVME_OP_WRITE : NVME_OP_READ, req.lba);
    this.c.recvs++;
    return { status: CqStatus.Success, result: req.lba | (req.write ? NIC_RECV_WRITE : 0) };
  }

  /** Bounce path: the response to request `io` leaves; a READ's data (len > 0) is read from src and checksummed. */
  private xmit(cmd: SqCommand): CommandResult {
    const io = cmd.args[NIC_ARG_IO];
    if (io < 0 || (io + 1) * NicIoLog.kFieldCount > this.log.length || cmd.len < 0 || cmd.len % 4 !== 0 || cmd.len > NIC_PKT_SLOT_BYTES) return this.badField(`XMIT of request ${io}, ${cmd.len} bytes`);
    const e = this.logEntry(io);
    let h = 0;
    if (cmd.len > 0) {
      const err = this.ctx.dma.read(cmd.src, PKT_OFF, cmd.len);
      if (err) return this.dataError(`XMIT of request ${io}: ${err}`);
      const t0 = performance.now();
      h = checksum(this.mem.subarray(PKT_OFF, PKT_OFF + cmd.len)) | 0;
      this.computed(t0);
      this.log[e + NicIoLog.checksum] = h;
      this.c.ioReads++;
    } else this.c.ioWrites++;
    this.log[e + NicIoLog.flags] = NIC_IOLOG_DONE;
    this.c.xmits++;
    this.c.ios++;
    return { status: CqStatus.Success, result: h };
  }
}
