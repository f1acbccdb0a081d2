/**
 * The NIC: a network card whose "wire" is a sink that checksums what it
 * transmits, and whose DMA engine addresses the process it is bound to by
 * virtual address (ImporterBinding.bind -> ctx.va()). The command ABI is
 * in src/devices/nic_abi.ts; the local memory layout in
 * src/shm/nic_layout.ts (NicMem).
 *
 * SEND: process memory -> packet buffer (DMA by VA, <= one slot per
 * chunk) -> sink fnv1a, continued chunk to chunk.
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
import { DeviceCtl } from '../src/shm/device_ctl.js';
import { CqStatus, type SqCommand } from '../src/shm/ring.js';
import { ProgressRecord } from '../src/shm/progress_record.js';
import { MonitorSample, NIC_PKT_SLOT_BYTES, NicMem, NIC_MEM_BYTES } from '../src/shm/nic_layout.js';
import { NIC_MON_MAX_SAMPLES, NIC_MON_MAX_TORN_IN_A_ROW, NIC_MON_PERIOD_US, NIC_OP_MONITOR, NIC_OP_SEND, type NicCounters } from '../src/devices/nic_abi.js';
import { fnv1a } from '../src/devices/models/checksum.js';
import { FNV_OFFSET } from '../src/devices/fnv.js';
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
}

export function createNic(ctx: DeviceContext): DeviceModel {
  const name = ctx.self.name;
  const mem = ctx.self.mem;
  if (!mem || mem.length < NIC_MEM_BYTES) throw new Error(`${name}: a nic needs ${NIC_MEM_BYTES} bytes of local memory (staging + packet buffers), has ${mem?.length ?? 0}`);
  const words = new Int32Array(mem.buffer, mem.byteOffset, NIC_MEM_BYTES / 4);
  const c: Counters = { sent: 0, sendChecksum: 0, sends: 0, samples: 0, torn: 0, nonMonotonic: 0, monitors: 0 };
  const nvme = new NicNvmeEngine(ctx, words);

  const dataError = (message: string): CommandResult => ({ status: CqStatus.DataTransferError, result: ctx.logError(message) });
  const badField = (message: string): CommandResult => ({ status: CqStatus.InvalidField, result: ctx.logError(`${name}: ${message}`) });

  /** nic_send: process memory -> packet buffer -> sink checksum. */
  function send(cmd: SqCommand): CommandResult {
    let h = FNV_OFFSET;
    for (let done = 0; done < cmd.len; ) {
      const n = Math.min(NIC_PKT_SLOT_BYTES, cmd.len - done);
      const err = ctx.va().read(cmd.src + done, PKT_OFF, n);
      if (err !== null) return dataError(`${name}: SEND of [0x${cmd.src.toString(16)}, +${cmd.len}) at +${done}: ${err}`);
      h = fnv1a(mem!.subarray(PKT_OFF, PKT_OFF + n), h);
      done += n;
    }
    c.sent += cmd.len;
    c.sends++;
    c.sendChecksum = h | 0;
    return { status: CqStatus.Success, result: h | 0 };
  }

  /** Sleeps until `ms` from now, acking invalidations as they come (they bump the wake word). */
  function sleepServing(ms: number): void {
    const deadline = performance.now() + ms;
    for (;;) {
      // Loaded before the check: pairs with ringWake in src/shm/device_ctl.ts.
      const seen = Atomics.load(ctx.self.ctl, DeviceCtl.wake);
      ctx.inv.check();
      const left = deadline - performance.now();
      if (left <= 0) return;
      Atomics.wait(ctx.self.ctl, DeviceCtl.wake, seen, left);
    }
  }

  /** nic_monitor: poll a ProgressRecord by seqcount; log the accepted samples. */
  function monitor(cmd: SqCommand): CommandResult {
    const periodUs = cmd.args[NIC_MON_PERIOD_US];
    const max = cmd.args[NIC_MON_MAX_SAMPLES];
    if (periodUs < 0 || max <= 0) return badField(`MONITOR period ${periodUs} us, max samples ${max}`);
    c.monitors++;
    let samples = 0;
    let torn = 0;
    let tornInARow = 0;
    let last = -Infinity;
    const what = `${name}: MONITOR of the record at 0x${cmd.src.toString(16)}`;
    while (samples < max) {
      let err = ctx.va().read(cmd.src, REC_OFF, ProgressRecord.kBytes);
      if (err === null) err = ctx.va().read(cmd.src + ProgressRecord.seq * 4, SEQ_OFF, 4);
      if (err !== null) return dataError(`${what}: ${err}`);
      const s1 = words[NicMem.record + ProgressRecord.seq];
      const s2 = words[NicMem.recordSeq];
      if ((s1 & 1) !== 0 || s1 !== s2) {
        torn++;
        c.torn++;
        if (++tornInARow > NIC_MON_MAX_TORN_IN_A_ROW) return dataError(`${what}: ${tornInARow} torn reads in a row (seq ${s1} -> ${s2}): the writer seems stuck mid-update`);
        ctx.inv.check();
        continue;
      }
      tornInARow = 0;
      const iteration = words[NicMem.record + ProgressRecord.iteration];
      if (iteration < last) c.nonMonotonic++;
      last = Math.max(last, iteration);
      const sw = NicMem.sample;
      words[sw + MonitorSample.iteration] = iteration;
      words[sw + MonitorSample.checksum] = words[NicMem.record + ProgressRecord.checksum];
      words[sw + MonitorSample.torn] = torn;
      words[sw + MonitorSample.rsvd] = 0;
      err = ctx.va().write(cmd.dst + samples * MonitorSample.kBytes, SAMPLE_OFF, MonitorSample.kBytes);
      if (err !== null) return dataError(`${what}: sample ${samples}: ${err}`);
      samples++;
      c.samples++;
      if (words[NicMem.record + ProgressRecord.done] === 1) break;
      if (samples < max) sleepServing(periodUs / 1000);
    }
    return { status: CqStatus.Success, result: samples };
  }

  return {
    execute(cmd: SqCommand): CommandResult {
      switch (cmd.opcode) {
        case NIC_OP_SEND:
          return send(cmd);
        case NIC_OP_MONITOR:
          return monitor(cmd);
        default:
          return nvme.execute(cmd) ?? { status: CqStatus.InvalidOpcode, result: ctx.logError(`${name}: unknown opcode ${cmd.opcode}`) };
      }
    },
    commands: {
      'nic-counters': () => {
        const r: NicCounters = { errno: 0, ...c, ...nvme.counters() };
        return r;
      },
      'nic-iolog': (cmd) => nvme.iolog(cmd.first, cmd.count),
    } satisfies CmdHandlers<keyof NicOps>,
  };
}
