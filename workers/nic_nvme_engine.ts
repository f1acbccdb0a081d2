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
 *   VA-write SQE -> CMB SQ[tail]
 *   DMA-write tail -> NVMe BAR0 sqTail ---> execute in order (CMB <-> blocks)
 *   seen = wake; VA-read CQE[head]          post CQE (status word last)
 *   no new phase: Atomics.wait(wake, seen) <--- MSI: DMA-write -> NIC BAR0
 *   new phase, cid == oldest in flight:         NIC_MSI_REG (+ wake)
 *     READ: VA-read CMB data slot, fnv1a
 *     log; head++
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
import { DeviceCtl } from '../src/shm/device_ctl.js';
import { PAGE_SIZE } from '../src/shm/constants.js';
import { FAULT_WINDOW } from '../src/shm/tlb_layout.js';
import { CqEntry, CqStatus, SQE_BYTES, CQE_BYTES, writeSqe, type SqCommand } from '../src/shm/ring.js';
import { NicIoLog, NicMem, NIC_IOLOG_DONE, NIC_PKT_SLOT_BYTES } from '../src/shm/nic_layout.js';
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
import { DeviceRegs } from '../src/shm/device_ctl.js';
import { clientPayload, clientRequest } from '../src/devices/models/nic_client.js';
import type { ClientStream } from '../src/devices/nic_abi.js';
import { fnv1a } from '../src/devices/models/checksum.js';
import type { NicNvmeCounters } from '../src/devices/nic_abi.js';
import type { CommandResult } from './runtime/device_queues.js';
import type { DeviceContext } from './runtime/device_model.js';

export interface NicNvmeEngine {
  /** Executes an NVMe-stream opcode; null when the opcode is not one of its own. */
  execute(cmd: SqCommand): CommandResult | null;
  /** NicIoLog entries [first, first + count) (deviceCmd 'nic-iolog'). */
  iolog(first?: number, count?: number): { readonly errno: 0; readonly log: Int32Array };
  counters(): NicNvmeCounters;
}

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

export function createNicNvmeEngine(ctx: DeviceContext, words: Int32Array): NicNvmeEngine {
  const name = ctx.self.name;
  const mem = ctx.self.mem!;
  const sqeView = words.subarray(NicMem.sqe, NicMem.sqe + SQE_BYTES / 4);
  let q: PeerQueue | null = null;
  let log = new Int32Array(0);
  const c = { ios: 0, ioReads: 0, ioWrites: 0, sqDoorbells: 0, cqDoorbells: 0, emptyCqPolls: 0, waits: 0, recvs: 0, xmits: 0 };

  const dataError = (message: string): CommandResult => ({ status: CqStatus.DataTransferError, result: ctx.logError(`${name}: ${message}`) });
  const badField = (message: string): CommandResult => ({ status: CqStatus.InvalidField, result: ctx.logError(`${name}: ${message}`) });

  function streamOf(cmd: SqCommand): ClientStream | string {
    const s = { seed: cmd.args[NIC_ARG_SEED] >>> 0, blocks: cmd.args[NIC_ARG_BLOCKS], blocksPerIo: cmd.args[NIC_ARG_BLOCKS_PER_IO], writePct: cmd.args[NIC_ARG_WRITE_PCT] };
    if (s.blocksPerIo <= 0 || s.blocks < s.blocksPerIo || s.writePct < 0 || s.writePct > 100) return `client stream of ${s.blocks} blocks, ${s.blocksPerIo} per IO, ${s.writePct}% writes`;
    return s;
  }

  /** Makes sure the IO log holds entry `io`. */
  function logEntry(io: number): number {
    const need = (io + 1) * NicIoLog.kFieldCount;
    if (log.length < need) {
      const grown = new Int32Array(Math.max(need, log.length * 2, 1024 * NicIoLog.kFieldCount));
      grown.set(log);
      log = grown;
    }
    return io * NicIoLog.kFieldCount;
  }

  /** Writes a doorbell register of the attached NVMe (aligned 32-bit DMA write to its BAR0). */
  function ring(reg: number, value: number): string | null {
    words[NicMem.doorbell] = value;
    return ctx.dma.write(q!.doorbellBase + reg * 4, DB_OFF, 4);
  }

  function attach(cmd: SqCommand): CommandResult {
    const entries = cmd.args[NIC_ARG_ENTRIES];
    const cqOff = cmd.args[NIC_ARG_CQ_OFFSET];
    const dataOff = cmd.args[NIC_ARG_DATA_OFFSET];
    const dataBytes = cmd.args[NIC_ARG_DATA_BYTES];
    if (entries < 2 || cqOff < entries * SQE_BYTES || dataOff < cqOff + entries * CQE_BYTES || dataOff + dataBytes > cmd.len) return badField(`NVME_ATTACH: queue area of ${cmd.len} bytes with ${entries} entries, CQ at +${cqOff}, data [+${dataOff}, +${dataBytes})`);
    // Prefault the whole area (writable): the stream then runs on TLB hits.
    const npages = Math.ceil(cmd.len / PAGE_SIZE);
    const va = ctx.va();
    for (let i = 0; i < npages; i += FAULT_WINDOW) {
      const r = va.tlb.fault(cmd.src + i * PAGE_SIZE, Math.min(FAULT_WINDOW, npages - i), true);
      if (r !== 0) return dataError(`NVME_ATTACH: faulting the queue area at 0x${(cmd.src + i * PAGE_SIZE).toString(16)}: ${r}`);
    }
    q = { qid: cmd.args[NIC_ARG_QID], entries, sqVa: cmd.src, cqVa: cmd.src + cqOff, dataVa: cmd.src + dataOff, dataBytes, doorbellBase: cmd.dst, tail: 0, head: 0, phase: 1 };
    return { status: CqStatus.Success, result: npages };
  }

  /** nic_nvme_run: the whole client stream against the peer queue. */
  function run(cmd: SqCommand): CommandResult {
    if (!q) return badField('NVME_RUN before NVME_ATTACH');
    const s = streamOf(cmd);
    if (typeof s === 'string') return badField(`NVME_RUN: ${s}`);
    const ios = cmd.args[NIC_ARG_IOS];
    const ioBytes = cmd.args[NIC_ARG_IO_BYTES];
    const depth = Math.min(cmd.args[NIC_ARG_QDEPTH], q.entries - 1);
    if (ios < 0 || depth < 1 || ioBytes <= 0 || ioBytes % 4 !== 0 || ioBytes > NIC_PKT_SLOT_BYTES || depth * ioBytes > q.dataBytes) return badField(`NVME_RUN: ${ios} IOs of ${ioBytes} bytes, depth ${depth}, with a ${q.dataBytes}-byte CMB data area and ${NIC_PKT_SLOT_BYTES}-byte packet slots`);
    const va = ctx.va();
    const pkt = mem.subarray(PKT_OFF, PKT_OFF + ioBytes);
    const flight: InFlight[] = [];
    const sqTail = DeviceRegs.sqTail + q.qid;
    const cqHead = DeviceRegs.cqHead + q.qid;
    let next = 0;
    let done = 0;
    let lastProgress = performance.now();
    while (done < ios) {
      // Submit while there is room.
      let submitted = 0;
      while (next < ios && flight.length < depth) {
        const req = clientRequest(s, next);
        const slotOff = (next % depth) * ioBytes;
        if (req.write) {
          clientPayload(s, next, pkt);
          const err = va.write(q.dataVa + slotOff, PKT_OFF, ioBytes);
          if (err) return dataError(`request ${next}: WRITE data to the CMB: ${err}`);
        }
        const opcode = req.write ? NVME_OP_WRITE : NVME_OP_READ;
        const args = [0, 0];
        args[NVME_ARG_LBA] = req.lba;
        args[NVME_ARG_FLAGS] = NVME_F_CMB;
        writeSqe(sqeView, 0, { opcode, cid: next & 0xffff, src: req.write ? slotOff : 0, dst: req.write ? 0 : slotOff, len: ioBytes, args });
        const err = va.write(q.sqVa + q.tail * SQE_BYTES, SQE_OFF, SQE_BYTES);
        if (err) return dataError(`request ${next}: SQE to the CMB SQ: ${err}`);
        q.tail = (q.tail + 1) % q.entries;
        const e = logEntry(next);
        log[e + NicIoLog.opcode] = opcode;
        log[e + NicIoLog.lba] = req.lba;
        log[e + NicIoLog.checksum] = 0;
        log[e + NicIoLog.flags] = 0;
        flight.push({ io: next, write: req.write, lba: req.lba, slotOff });
        next++;
        submitted++;
      }
      if (submitted > 0) {
        const err = ring(sqTail, q.tail);
        if (err) return dataError(`SQ tail doorbell: ${err}`);
        c.sqDoorbells++;
      }
      // Reap what has completed. `seen` is loaded before the CQ is looked
      // at: pairs with the MSI's ringWake (dma_engine doorbell) in workers/nvme.ts.
      const seen = Atomics.load(ctx.self.ctl, DeviceCtl.wake);
      let reaped = 0;
      while (flight.length > 0) {
        const err = va.read(q.cqVa + q.head * CQE_BYTES, CQE_OFF, CQE_BYTES);
        if (err) return dataError(`CQE ${q.head}: ${err}`);
        const st = words[NicMem.cqe + CqEntry.status];
        const f = flight[0];
        if (((st >>> 16) & 1) !== q.phase || (st & 0xffff) !== (f.io & 0xffff)) {
          if (reaped === 0) c.emptyCqPolls++;
          break;
        }
        const status = st >>> 17;
        if (status !== CqStatus.Success) return dataError(`request ${f.io} (${f.write ? 'WRITE' : 'READ'} lba ${f.lba}): NVMe completion status ${status}`);
        const e = logEntry(f.io);
        if (!f.write) {
          const err2 = va.read(q.dataVa + f.slotOff, PKT_OFF, ioBytes);
          if (err2) return dataError(`request ${f.io}: READ data from the CMB: ${err2}`);
          log[e + NicIoLog.checksum] = fnv1a(pkt) | 0;
          c.ioReads++;
        } else c.ioWrites++;
        log[e + NicIoLog.flags] = NIC_IOLOG_DONE;
        flight.shift();
        q.head = (q.head + 1) % q.entries;
        if (q.head === 0) q.phase ^= 1;
        reaped++;
        done++;
        c.ios++;
      }
      if (reaped > 0) {
        const err = ring(cqHead, q.head);
        if (err) return dataError(`CQ head doorbell: ${err}`);
        c.cqDoorbells++;
        lastProgress = performance.now();
        continue;
      }
      if (next < ios && flight.length < depth) continue;
      if (performance.now() - lastProgress > NIC_NVME_STALL_MS) return dataError(`NVME_RUN: the NVMe posted no completion for ${NIC_NVME_STALL_MS} ms (${flight.length} in flight, oldest request ${flight[0]?.io})`);
      ctx.inv.check();
      c.waits++;
      Atomics.wait(ctx.self.ctl, DeviceCtl.wake, seen, WAIT_SLICE_MS);
    }
    return { status: CqStatus.Success, result: done };
  }

  function recv(cmd: SqCommand): CommandResult {
    const s = streamOf(cmd);
    if (typeof s === 'string') return badField(`RECV: ${s}`);
    const io = cmd.args[NIC_ARG_IO];
    if (io < 0 || cmd.len <= 0 || cmd.len % 4 !== 0 || cmd.len > NIC_PKT_SLOT_BYTES) return badField(`RECV of request ${io}, ${cmd.len} bytes`);
    const req = clientRequest(s, io);
    if (req.write) {
      clientPayload(s, io, mem.subarray(PKT_OFF, PKT_OFF + cmd.len));
      const err = ctx.dma.write(cmd.dst, PKT_OFF, cmd.len);
      if (err) return dataError(`RECV of request ${io}: ${err}`);
    }
    const e = logEntry(io);
    log[e + NicIoLog.opcode] = req.write ? NVME_OP_WRITE : NVME_OP_READ;
    log[e + NicIoLog.lba] = req.lba;
    log[e + NicIoLog.checksum] = 0;
    log[e + NicIoLog.flags] = 0;
    c.recvs++;
    return { status: CqStatus.Success, result: req.lba | (req.write ? NIC_RECV_WRITE : 0) };
  }

  function xmit(cmd: SqCommand): CommandResult {
    const io = cmd.args[NIC_ARG_IO];
    if (io < 0 || (io + 1) * NicIoLog.kFieldCount > log.length || cmd.len < 0 || cmd.len % 4 !== 0 || cmd.len > NIC_PKT_SLOT_BYTES) return badField(`XMIT of request ${io}, ${cmd.len} bytes`);
    const e = logEntry(io);
    let h = 0;
    if (cmd.len > 0) {
      const err = ctx.dma.read(cmd.src, PKT_OFF, cmd.len);
      if (err) return dataError(`XMIT of request ${io}: ${err}`);
      h = fnv1a(mem.subarray(PKT_OFF, PKT_OFF + cmd.len)) | 0;
      log[e + NicIoLog.checksum] = h;
      c.ioReads++;
    } else c.ioWrites++;
    log[e + NicIoLog.flags] = NIC_IOLOG_DONE;
    c.xmits++;
    c.ios++;
    return { status: CqStatus.Success, result: h };
  }

  return {
    execute(cmd) {
      switch (cmd.opcode) {
        case NIC_OP_NVME_ATTACH:
          return attach(cmd);
        case NIC_OP_NVME_RUN:
          return run(cmd);
        case NIC_OP_RECV:
          return recv(cmd);
        case NIC_OP_XMIT:
          return xmit(cmd);
        default:
          return null;
      }
    },
    iolog(first = 0, count = log.length / NicIoLog.kFieldCount - first) {
      const out = new Int32Array(Math.max(0, count) * NicIoLog.kFieldCount);
      out.set(log.subarray(first * NicIoLog.kFieldCount, Math.min(log.length, (first + count) * NicIoLog.kFieldCount)));
      return { errno: 0, log: out };
    },
    counters: () => ({ ...c, msi: Atomics.load(ctx.self.regs, NIC_MSI_REG) }),
  };
}
