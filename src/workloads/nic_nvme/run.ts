/**
 * RFC workload (1): a NIC drives an NVMe queue, no CPU (use case [A]).
 *
 * p2p mode — the kernel sets up, then stays out of the data path:
 *
 *   kernel (setup only)                       nic0                      nvme0
 *   -------------------                       ----                      -----
 *   NvmeDriver.probe: namespace in nvme memory
 *   ImporterBinding.bind(nic0, mm)
 *   createCmbQueue: SQ|CQ|data VMA, export
 *     policy importers [nic0] only, MSI -> nic0 BAR0
 *   NVME_ATTACH (prefault the VMA)  ------->  TLB filled (page requests)
 *   NVME_RUN  ----------------------------->  per request: SQE + data by VA ---> CMB
 *                                             doorbell (BAR0 write)   ------> execute
 *                                             CQE, data by VA        <------ MSI
 *                                  <-------  one completion for the stream
 *   [Required: no kernel command, page request or interrupt per request]
 *
 * bounce mode — as without P2P, the kernel relays every request through
 * system RAM: RECV (NIC -> RAM buffer) -> NVMe READ/WRITE from a host queue
 * (NVMe <-> RAM buffer) -> XMIT (RAM buffer -> NIC): three kernel commands
 * and two staging copies of the data per request.
 *
 * Both modes fill the NIC's IO log, which check.ts replays against a
 * shadow copy of the namespace.
 */
import { DeviceError } from '../../errors.js';
import type { Device, Machine } from '../../devices/machine.js';
import { completionError, HostQueue } from '../../drivers/host_queue.js';
import { ImporterBinding } from '../../drivers/importer_binding.js';
import { NvmeDriver } from '../../drivers/nvme_driver.js';
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
  NIC_HOST_QID,
  NIC_MSI_REG,
  NIC_OP_NVME_ATTACH,
  NIC_OP_NVME_RUN,
  NIC_OP_RECV,
  NIC_OP_XMIT,
  NIC_RECV_WRITE,
} from '../../devices/nic_abi.js';
import { NVME_ARG_FLAGS, NVME_ARG_LBA, NVME_OP_READ, NVME_OP_WRITE, type NvmeCounters } from '../../devices/nvme_abi.js';
import { PAGE_SIZE } from '../../shm/constants.js';
import { bar0Reg } from '../../shm/phys_mem.js';
import { DeviceRegs } from '../../shm/device_ctl.js';
import { CqStatus, type Completion, type SqCommand } from '../../shm/ring.js';
import type { Extent } from '../../shm/page_alloc.js';
import type { Kernel } from '../../kernel/kernel.js';
import { bootKernel, processMm, startMachine } from '../kernel_boot.js';
import { stageTimes } from '../accounting.js';
import { NO_BASELINE, stageSince, type Baseline } from '../counter_baseline.js';
import type { StageTimes, WorkloadContext } from '../workload.js';
import type { ClientStream, NicCounters } from '../../devices/nic_abi.js';
import { deviceQuery } from '../command_runner.js';
import { checkAgainstShadow, type ShadowCheck } from './check.js';
import type { NicNvmeWorkload } from './schema.js';

export interface NicNvmeResult {
  readonly ios: number;
  readonly ioBytes: number;
  readonly blockBytes: number;
  readonly wallMs: number;
  /** Kernel commands submitted per request after setup, page requests and interrupts during the stream. */
  readonly hostCommands: number;
  readonly pageRequests: number;
  readonly hostWakeups: number;
  readonly shadow: ShadowCheck;
  readonly devices: readonly StageTimes[];
  readonly nvme: NvmeCounters;
  readonly nic: NicCounters;
}

/** Submits one command and waits for its completion (setup and the p2p stream). Counts the host's wakeups. A failure names the kernel's reason when a refused page request is it (completionError). */
async function oneCommand(machine: Machine, kernel: Kernel, q: HostQueue, cmd: Omit<SqCommand, 'cid'>): Promise<{ c: Completion; wakeups: number }> {
  q.submit(cmd, null);
  let wakeups = 0;
  for (;;) {
    const seen = machine.irqSeen();
    const got = q.reap();
    if (got.length > 0) {
      if (got[0].c.status !== CqStatus.Success) throw await completionError(q.dev, got[0].c, kernel);
      return { c: got[0].c, wakeups };
    }
    await machine.waitHostIrq(seen, () => [{ dev: q.dev, outstanding: q.outstanding }]);
    wakeups++;
  }
}

function streamArgs(s: ClientStream): number[] {
  const a = [0, 0, 0, 0, 0, 0, 0, 0];
  a[NIC_ARG_SEED] = s.seed | 0;
  a[NIC_ARG_BLOCKS] = s.blocks;
  a[NIC_ARG_BLOCKS_PER_IO] = s.blocksPerIo;
  a[NIC_ARG_WRITE_PCT] = s.writePct;
  return a;
}

interface Setup {
  readonly kernel: Kernel;
  readonly drv: NvmeDriver;
  readonly nicQ: HostQueue;
  readonly stream: ClientStream;
}

/** A stream's figures; `setup`: the devices' stage times at its timed window's start (the NIC's NVME_ATTACH prefault is setup). */
interface Streamed {
  readonly wallMs: number;
  readonly hostCommands: number;
  readonly pageRequests: number;
  readonly hostWakeups: number;
  readonly setup: Baseline;
}

/** The devices' stage times now: the timed window's start (counter_baseline's stageSince counts from it). */
function windowStart(su: Setup, nic: Device): Baseline {
  return { ...NO_BASELINE, stages: new Map([nic, su.drv.dev].map((d) => [d.spec.name, stageTimes(d)])) };
}

async function p2pStream(ctx: WorkloadContext, w: NicNvmeWorkload, su: Setup): Promise<Streamed> {
  const { machine } = ctx;
  const nic = machine.device(w.nic);
  const mm = processMm(ctx, su.kernel, w.process);
  const binding = await ImporterBinding.bind(su.kernel, w.nic, mm);
  try {
    const q = await su.drv.createCmbQueue(mm, {
      entries: w.queueEntries,
      dataBytes: w.queueDepth * w.ioBytes,
      policy: { importers: [w.nic], readOnly: false, requireIommu: false, cpuMappable: false },
      msiAddr: su.kernel.dmaMap(w.nvme, bar0Reg(nic.shm.index, NIC_MSI_REG), 4, true),
    });
    const attach = [0, 0, 0, 0, 0];
    attach[NIC_ARG_QID] = q.qid;
    attach[NIC_ARG_ENTRIES] = q.entries;
    attach[NIC_ARG_CQ_OFFSET] = q.cqOffset;
    attach[NIC_ARG_DATA_OFFSET] = q.dataOffset;
    attach[NIC_ARG_DATA_BYTES] = q.dataBytes;
    const doorbells = su.kernel.dmaMap(w.nic, q.doorbellBase, DeviceRegs.kBytes, true);
    await oneCommand(machine, su.kernel, su.nicQ, { opcode: NIC_OP_NVME_ATTACH, src: q.va, dst: doorbells, len: q.npages * PAGE_SIZE, args: attach });
    // Set up. From here the kernel only waits for the stream's one completion.
    const requests0 = binding.requests;
    const setup = windowStart(su, nic);
    const run = streamArgs(su.stream);
    run[NIC_ARG_IOS] = w.ios;
    run[NIC_ARG_QDEPTH] = w.queueDepth;
    run[NIC_ARG_IO_BYTES] = w.ioBytes;
    const t0 = performance.now();
    const { wakeups } = await oneCommand(machine, su.kernel, su.nicQ, { opcode: NIC_OP_NVME_RUN, src: 0, dst: 0, len: 0, args: run });
    const wallMs = performance.now() - t0;
    const pageRequests = binding.requests - requests0;
    return { wallMs, hostCommands: 0, pageRequests, hostWakeups: wakeups, setup };
  } finally {
    await binding.close();
  }
}

async function bounceStream(ctx: WorkloadContext, w: NicNvmeWorkload, su: Setup): Promise<Streamed> {
  const { machine } = ctx;
  const nvme = su.drv.dev;
  const nvmeQ = await su.drv.hostQueue(w.queueDepth + 1);
  const bufs: Extent[] = [];
  try {
    for (let i = 0; i < w.queueDepth; i++) bufs.push(machine.ram.allocContig(Math.ceil(w.ioBytes / PAGE_SIZE)));
    // Each device gets the buffers as its DMA addresses (IOVAs behind an IOMMU).
    const nicAddr = bufs.map((e) => su.kernel.dmaMap(w.nic, e.start * PAGE_SIZE, w.ioBytes, true));
    const nvmeAddr = bufs.map((e) => su.kernel.dmaMap(w.nvme, e.start * PAGE_SIZE, w.ioBytes, true));
    const free = bufs.map((_, i) => i);
    const toNvme: { io: number; buf: number; write: boolean; lba: number }[] = [];
    type Tag = { stage: 'recv' | 'xmit'; io: number; buf: number };
    let nextRecv = 0;
    let done = 0;
    let hostCommands = 0;
    let wakeups = 0;
    const setup = windowStart(su, su.nicQ.dev);
    const t0 = performance.now();
    while (done < w.ios) {
      const seen = machine.irqSeen();
      for (const { c, tag } of su.nicQ.reap()) {
        if (c.status !== CqStatus.Success) throw await completionError(su.nicQ.dev, c, su.kernel);
        const t = tag as Tag;
        if (t.stage === 'recv') toNvme.push({ io: t.io, buf: t.buf, write: (c.result & NIC_RECV_WRITE) !== 0, lba: c.result & ~NIC_RECV_WRITE });
        else {
          free.push(t.buf);
          done++;
        }
      }
      for (const { c, tag } of nvmeQ.reap()) {
        if (c.status !== CqStatus.Success) throw await completionError(nvme, c, su.kernel);
        const t = tag as { io: number; buf: number; write: boolean };
        const args = streamArgs(su.stream);
        args[NIC_ARG_IO] = t.io;
        // Room is guaranteed: the NIC queue holds 2 x depth + 1 entries and at most depth requests are in flight.
        su.nicQ.submit({ opcode: NIC_OP_XMIT, src: nicAddr[t.buf], dst: 0, len: t.write ? 0 : w.ioBytes, args }, { stage: 'xmit', io: t.io, buf: t.buf } satisfies Tag);
        hostCommands++;
      }
      while (toNvme.length > 0 && !nvmeQ.full) {
        const r = toNvme.shift()!;
        const args = [0, 0];
        args[NVME_ARG_LBA] = r.lba;
        args[NVME_ARG_FLAGS] = 0;
        nvmeQ.submit({ opcode: r.write ? NVME_OP_WRITE : NVME_OP_READ, src: r.write ? nvmeAddr[r.buf] : 0, dst: r.write ? 0 : nvmeAddr[r.buf], len: w.ioBytes, args }, r);
        hostCommands++;
      }
      while (nextRecv < w.ios && free.length > 0 && !su.nicQ.full) {
        const buf = free.shift()!;
        const args = streamArgs(su.stream);
        args[NIC_ARG_IO] = nextRecv;
        su.nicQ.submit({ opcode: NIC_OP_RECV, src: 0, dst: nicAddr[buf], len: w.ioBytes, args }, { stage: 'recv', io: nextRecv, buf } satisfies Tag);
        hostCommands++;
        nextRecv++;
      }
      if (done === w.ios) break;
      await machine.waitHostIrq(seen, () => [
        { dev: su.nicQ.dev, outstanding: su.nicQ.outstanding },
        { dev: nvme, outstanding: nvmeQ.outstanding },
      ]);
      wakeups++;
    }
    return { wallMs: performance.now() - t0, hostCommands, pageRequests: 0, hostWakeups: wakeups, setup };
  } finally {
    // The queues' rings stay allocated: the devices still hold them until the machine is shut down.
    for (const b of bufs) machine.ram.freeExtent(b);
  }
}

export async function runNicNvme(ctx: WorkloadContext, w: NicNvmeWorkload): Promise<NicNvmeResult> {
  const { machine } = ctx;
  const nic = machine.device(w.nic);
  const nvme = machine.device(w.nvme);
  const blockBytes = (nvme.spec.props.blockBytes as number | undefined) ?? 4096;
  if (w.ioBytes % blockBytes !== 0 || w.ioBytes / blockBytes > w.blocks) throw new DeviceError(w.nvme, 'device-error', `requests of ${w.ioBytes} bytes are not whole ${blockBytes}-byte blocks of a ${w.blocks}-block namespace (workload.ioBytes, devices[].props.blockBytes)`);
  const stream: ClientStream = { seed: ctx.seed, blocks: w.blocks, blocksPerIo: w.ioBytes / blockBytes, writePct: w.writePct };
  const nicQ = await HostQueue.create(machine, nic, NIC_HOST_QID, 2 * w.queueDepth + 2);
  await startMachine(ctx);
  const kernel = await bootKernel(ctx);
  const drv = await NvmeDriver.probe(kernel, w.nvme, w.blocks);
  {
    const su: Setup = { kernel, drv, nicQ, stream };
    const { setup, ...r } = ctx.mode === 'p2p' ? await p2pStream(ctx, w, su) : await bounceStream(ctx, w, su);
    const { log } = await deviceQuery(machine, nic, { op: 'nic-iolog', first: 0, count: w.ios });
    const shadow = checkAgainstShadow(stream, blockBytes, w.ios, log);
    const nicCounters = await deviceQuery(machine, nic, { op: 'nic-counters' });
    return {
      ios: w.ios,
      ioBytes: w.ioBytes,
      blockBytes,
      ...r,
      shadow,
      // The timed window's: not the NVME_ATTACH prefault's page requests and fault wait.
      devices: [stageSince(nic, setup), stageSince(nvme, setup)],
      nvme: await drv.counters(),
      nic: nicCounters,
    };
  }
}
