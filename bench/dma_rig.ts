/**
 * Data-path rows of `peervma bench`: a device (nic0) streams by process VA
 * from a peer's exported VMA (acc0's memory behind a BarExporter), with no
 * workload compute: the `va-stream` device command (workers/runtime/
 * va_stream.ts) loops VaSpace reads of `cmdBytes` each. Every figure is
 * the worker's own time for whole passes; every layout is verified once
 * byte for byte against the exporter's memory (a bench that moves the
 * wrong bytes fast is worth nothing), and before its first sample every
 * timed device settles (settleStream: its engine's JIT, as the copy
 * baselines' warm-up pass settles theirs).
 *
 *   dma.p2p.contig     contiguous backing, 1 MiB commands, warm TLB
 *   dma.p2p.64k        the same, 64 KiB commands; both against memcpy.dram,
 *                      and as .same against memcpy.contig: main copies the
 *                      same bytes into the same memory (the export into
 *                      nic0's local), samples alternating (a fresh buffer's
 *                      copy rate is its allocation's, bench/memcpy.ts)
 *   inval.streaming.*  round trip of a revoke (notifier path) that the
 *                      streaming device must ack between two DMA chunks
 *                      (one per timer tick; .b2b.*: back to back); .same
 *                      against atomics.rtt.streaming, the bare round trip
 *                      timed the same way under the same stream
 *   inval.batched      revokes of pages in the stream, 64 at a time, while
 *                      it streams: ranges/s, with the safety checker's
 *                      violation count; dma.p2p.storm is that stream's rate,
 *                      against dma.p2p.storm.calm (the same stream without
 *                      the storm, sampled alternately with it)
 *   dma.p2p.scattered  backing = shuffled 4 KiB device pages (samples alternate
 *                      with memcpy.scattered's, the same pages in the same order)
 *   dma.p2p.cold       first touch: page requests, hmmRangeFault, BAR
 *                      mapping and replies inside the window
 *   dma.p2p.2streams   nic0 and nic1, one half of the VMA each, at once
 *                      (both leave on one start line, as memcpy.2threads does),
 *                      against memcpy.2threads, and as .same against
 *                      memcpy.2threads.same: two threads copying the same
 *                      halves into the same memories, samples alternating
 *   dma.bounce         acc0 writes a RAM buffer by VA, nic0 reads it: two copies,
 *                      pipelined by halves of a two-span buffer (double buffering)
 *   dma.bounce.serial  the same two copies one after the other
 *
 * The span (DMA_SPAN, 128 MiB) is DRAM scale like memcpy.dram; it is below
 * 256 MiB because one device's BAR2 window is at most 240 MiB here.
 */
import { Machine, type Device } from '../src/devices/machine.js';
import { BarExporter } from '../src/drivers/bar_exporter.js';
import { ImporterBinding } from '../src/drivers/importer_binding.js';
import { mulberry32 } from '../src/hw/p2pdma.js';
import { Kernel } from '../src/kernel/kernel.js';
import { PROT_READ, PROT_WRITE, type Mm } from '../src/kernel/mm.js';
import type { P2pPolicy } from '../src/kernel/kernel_types.js';
import type { VaStreamArgs, VaStreamResult } from '../src/devices/protocol.js';
import { PAGE_SIZE } from '../src/shm/constants.js';
import { INV_BATCH } from '../src/shm/device_ctl.js';
import { allocLayout } from '../src/shm/layout.js';
import { START_LINE_DEADLINE_MS, StartLine } from '../src/shm/start_line.js';
import { deviceQuery } from '../src/workloads/command_runner.js';
import { MiB } from '../src/workloads/memcpy_baseline.js';
import { sameMemoryRate, scatteredRate, twoThreads } from './memcpy.js';
import { roundTripper } from './pingpong.js';
import { quantile, repeat, type RowSet } from './stats.js';

export interface DmaOptions {
  readonly span: number;
  readonly coldSpan: number;
  readonly repeats: number;
  /** Length of each streaming-invalidation sample (ms of streaming). */
  readonly streamMs: number;
}


/** Every pair is behind one switch: this bench measures the emulator, not a topology. */
const oneSwitch: P2pPolicy = () => ({ map: 'bus-addr', distance: 2, reason: 'bench: exporter and importers behind one switch' });

const mbs = (r: { bytes: number; ms: number }) => r.bytes / 1e3 / r.ms;

export async function dmaRows(rows: RowSet, o: DmaOptions, log: (m: string) => void = () => undefined): Promise<void> {
  const machine = await createDmaMachine(o);
  try {
    await machine.start();
    const rig = await openRig(machine, rows, o, log);
    const c = await contigRows(rig);
    await invalStreamingRows(rig, c);
    await revokeStormRows(rig, c);
    await rig.mm.munmap(c.va, rig.span);
    await scatteredRows(rig);
    await coldRows(rig);
    const two = await twoStreamsRows(rig);
    await bounceRows(rig, two);
    await closeRig(rig);
  } finally {
    await machine.shutdown();
  }
}

/** An exported VMA of acc0's memory: its VA and the device pages behind it, in VMA order. */
interface Export {
  readonly va: number;
  readonly pages: readonly number[];
}

/** What every row family shares: the machine, kernel, mm, acc0's exporter and nic0 bound as importer. */
interface DmaRig {
  readonly machine: Machine;
  readonly kernel: Kernel;
  readonly mm: Mm;
  readonly ex: BarExporter;
  readonly acc: Device;
  readonly accMem: Uint8Array;
  readonly nic0: ImporterBinding;
  readonly span: number;
  readonly npages: number;
  readonly o: DmaOptions;
  readonly rows: RowSet;
  readonly log: (m: string) => void;
}

/** acc0 exports (BAR2 = span); nic0 and nic1 import; acc0's memory also holds the cold exports. */
function createDmaMachine(o: DmaOptions): Promise<Machine> {
  const span = o.span;
  return Machine.create({
    ramBytes: 2 * span + 16 * MiB, // dma.bounce's staging buffer is two spans
    timeoutMs: 20000,
    devices: [
      { name: 'acc0', kind: 'accelerator', memBytes: span + o.coldSpan + 4 * MiB, barBytes: span, props: {} },
      { name: 'nic0', kind: 'nic', memBytes: span, barBytes: 0, props: {} },
      { name: 'nic1', kind: 'nic', memBytes: span / 2, barBytes: 0, props: {} },
    ],
  });
}

async function openRig(machine: Machine, rows: RowSet, o: DmaOptions, log: (m: string) => void): Promise<DmaRig> {
  const kernel = Kernel.boot(machine, { policy: oneSwitch, check: true });
  const mm = kernel.createMm();
  const ex = new BarExporter(kernel, 'acc0', { importers: '*', readOnly: false, requireIommu: false, cpuMappable: false });
  const acc = machine.device('acc0');
  const accMem = acc.shm.mem!;
  const nic0 = await ImporterBinding.bind(kernel, 'nic0', mm);
  return { machine, kernel, mm, ex, acc, accMem, nic0, span: o.span, npages: o.span / PAGE_SIZE, o, rows, log };
}

/** nic0 bound, mm gone; the machine itself is shut down by dmaRows. */
async function closeRig(rig: DmaRig): Promise<void> {
  await rig.nic0.close();
  await rig.mm.exit();
}

/** One va-stream command on `dev`; a failure throws, naming the device and the kernel's reason for a refused page request. */
async function stream(rig: DmaRig, dev: string, args: VaStreamArgs): Promise<VaStreamResult> {
  return vaStreamOn(rig.machine, dev, args, rig.kernel);
}

/** One va-stream command on `dev`; a failure throws, naming the device (with the `kernel`: and its reason for a refused page request). */
function vaStreamOn(machine: Machine, dev: string, args: VaStreamArgs, kernel?: Kernel): Promise<VaStreamResult> {
  return deviceQuery(machine, machine.device(dev), { op: 'va-stream', ...args }, kernel);
}

/** settleStream's command size and the fewest commands it runs: enough for V8 to compile the steady path (DESIGN section 9, s23dma). */
export const SETTLE_CMD_BYTES = 64 * 1024;
export const SETTLE_COMMANDS = 4096;

/**
 * Lets a device's DMA path settle before its first timed sample, as the
 * copy baselines' warm-up pass does theirs (timeCopy: "page in, let the JIT
 * settle"): after the fault-in pass, at least SETTLE_COMMANDS commands of
 * SETTLE_CMD_BYTES over [va, +len), the fault-in pass's translations
 * already warm. The fault-in pass alone (128 commands of 1 MiB over 128 MiB,
 * through the fault path) left the steady path's per-command functions to
 * reach TurboFan in the worker inside the first timed samples (figures in
 * DESIGN section 9, s23dma). A real
 * DMA engine runs at its rate from its first command: this is the
 * emulator's JIT, not the modelled machine. `dir`: as the timed stream's;
 * `len` a multiple of 64 KiB (va-stream's local span rule).
 */
export function settleStream(machine: Machine, dev: string, va: number, len: number, dir: Pick<VaStreamArgs, 'localOff' | 'write'> = {}): Promise<VaStreamResult> {
  const passes = Math.ceil(SETTLE_COMMANDS / Math.ceil(len / SETTLE_CMD_BYTES));
  return vaStreamOn(machine, dev, { va, len, cmdBytes: SETTLE_CMD_BYTES, passes, ...dir });
}

/** The exporter's bytes of `pages`, in VMA order, must equal the importer's local [0, +len). */
function verify(rig: DmaRig, what: string, pages: readonly number[], dev: string, localOff = 0): void {
  const accMem = rig.accMem;
  const local = rig.machine.device(dev).shm.mem!;
  for (let i = 0; i < pages.length; i++) {
    const a = Buffer.from(accMem.buffer, accMem.byteOffset + pages[i] * PAGE_SIZE, PAGE_SIZE);
    const b = Buffer.from(local.buffer, local.byteOffset + localOff + i * PAGE_SIZE, PAGE_SIZE);
    if (!a.equals(b)) throw new Error(`bench: ${what}: ${dev} read wrong bytes at page ${i} (device page ${pages[i]})`);
  }
}

function pattern(accMem: Uint8Array, pages: readonly number[], seed: number): void {
  const rnd = mulberry32(seed);
  for (const p of pages) {
    const w = new Int32Array(accMem.buffer, accMem.byteOffset + p * PAGE_SIZE, PAGE_SIZE / 4);
    for (let k = 0; k < w.length; k += 64) w[k] = (rnd() * 0x7fffffff) | 0;
    w[w.length - 1] = p;
  }
}

async function exportPages(rig: DmaRig, n: number, backing?: number[]): Promise<Export> {
  const m = await rig.ex.mmap(rig.mm, n, backing);
  const pages = Array.from({ length: n }, (_, i) => rig.ex.pageOf(m.vma, i));
  pattern(rig.accMem, pages, n ^ pages[0]);
  return { ...m, pages };
}

/** dma.p2p.contig and dma.p2p.64k over a contiguous export, warm; returns it for the invalidation rows. */
async function contigRows(rig: DmaRig): Promise<Export> {
  const { rows, o, span } = rig;
  rig.log('bench:   dma: contiguous backing, warm');
  const c = await exportPages(rig, rig.npages);
  await stream(rig, 'nic0', { va: c.va, len: span, cmdBytes: MiB }); // faults everything in
  verify(rig, 'dma.p2p.contig', c.pages, 'nic0');
  await settleStream(rig.machine, 'nic0', c.va, span);
  // The baseline copies the bytes the stream reads into the memory it writes (bench/memcpy.ts: a fresh buffer's
  // copy rate is its allocation's); samples alternate, as memcpy.scattered's do.
  const copy = sameMemoryRate(contiguous(rig.accMem, c.pages), rig.machine.device('nic0').shm.mem!.subarray(0, span), 2 * span);
  const base: number[] = [];
  const cmd1m: number[] = [];
  const cmd64k: number[] = [];
  for (let k = 0; k < o.repeats; k++) {
    base.push(copy());
    cmd1m.push(mbs(await stream(rig, 'nic0', { va: c.va, len: span, cmdBytes: MiB, passes: 2 })));
    cmd64k.push(mbs(await stream(rig, 'nic0', { va: c.va, len: span, cmdBytes: 64 * 1024, passes: 2 })));
  }
  rows.add('memcpy.contig', 'MB/s', base, null, `main thread copies the ${span / MiB} MiB dma.p2p.contig reads (acc0's exported pages) into the memory it writes (nic0's local), as memcpy.dram copies its own buffers; each sample just before a dma.p2p.contig and a .64k sample`);
  // The issue's rows keep the issue's baseline (memcpy.dram); the .same rows give the same samples against the
  // copy of the same bytes into the same memory (the stricter bar: a fresh buffer's copy rate is its allocation's).
  rows.add('dma.p2p.contig', 'MB/s', cmd1m, 'memcpy.dram', `nic0 reads ${span / MiB} MiB of acc0's exported VMA by VA, 1 MiB commands, TLB warm`);
  rows.add('dma.p2p.64k', 'MB/s', cmd64k, 'memcpy.dram', 'as dma.p2p.contig, 64 KiB commands');
  rows.add('dma.p2p.contig.same', 'MB/s', cmd1m, 'memcpy.contig', 'dma.p2p.contig\'s samples against the copy of the same bytes into the same memory, taken alternately with them');
  rows.add('dma.p2p.64k.same', 'MB/s', cmd64k, 'memcpy.contig', 'dma.p2p.64k\'s samples, likewise');
  return c;
}

/** The bytes of `pages` of `mem` as one view: they must be contiguous (a fresh export's are: allocContig). */
function contiguous(mem: Uint8Array, pages: readonly number[]): Uint8Array {
  for (let i = 1; i < pages.length; i++) if (pages[i] !== pages[0] + i) throw new Error(`bench: export not contiguous at page ${i} (device page ${pages[i]} after ${pages[i - 1]})`);
  return mem.subarray(pages[0] * PAGE_SIZE, (pages[0] + pages.length) * PAGE_SIZE);
}

/**
 * inval.streaming.p50/p99: revokes of a page outside the stream, acked by
 * nic0 while it streams `c`, one per timer tick (sporadic: main's code runs
 * cold each time); inval.streaming.b2b.*: the same back to back, one
 * event-loop turn apart, as atomics.rtt itself is measured.
 *
 * atomics.rtt.streaming: atomics.rtt's round trip (main blocks in
 * Atomics.wait, an idle worker returns the ball) timed like the sporadic
 * revokes, one per timer tick while nic0 streams, its windows alternating
 * with theirs; inval.streaming.p50/.p99.same are the revokes' samples
 * against it. atomics.rtt runs in its own section, back to back with both
 * threads' vCPUs awake or asleep as the VM's load has them: it measured 4-5
 * µs in some runs and 61-71 µs in others of one session (each wake of an
 * idle vCPU costs tens of µs), so the issue's ratio moved 3-600x with no
 * change to the invalidation path. The .same rows compare the revoke with
 * the bare round trip under the same streaming load and timer-tick cadence.
 */
async function invalStreamingRows(rig: DmaRig, c: Export): Promise<void> {
  rig.log('bench:   dma: invalidation while streaming');
  const other = await rig.mm.mmap({ length: PAGE_SIZE, prot: PROT_READ | PROT_WRITE });
  const rt = await roundTripper();
  let sporadic: Latencies[];
  try {
    sporadic = await streamingLatencies(rig, c, [() => rig.mm.revokeRange(other, other + PAGE_SIZE, null), rt.roundTrip], () => sleep(0));
  } finally {
    await rt.close();
  }
  const [revoke, bare] = sporadic;
  rig.rows.add('inval.streaming.p50', 'us', revoke.p50, 'atomics.rtt', 'revoke (notifier path) of a page the stream does not use, acked by nic0 while it streams, one per timer tick; p50 of each sample; ratio to the blocking Atomics round trip');
  rig.rows.add('inval.streaming.p99', 'us', revoke.p99, 'atomics.rtt', 'as inval.streaming.p50, p99 of each sample');
  rig.rows.add('atomics.rtt.streaming', 'us', bare.p50, null, "atomics.rtt's blocking round trip with an idle worker, one per timer tick while nic0 streams (its windows alternating with inval.streaming's); p50 of each sample");
  rig.rows.add('atomics.rtt.streaming.p99', 'us', bare.p99, 'atomics.rtt.streaming', 'as atomics.rtt.streaming, p99 of each sample: the tail the machine gives a bare round trip under the same load');
  rig.rows.add('inval.streaming.p50.same', 'us', revoke.p50, 'atomics.rtt.streaming', "inval.streaming.p50's samples against the bare round trip measured under the same streaming load, windows alternating");
  rig.rows.add('inval.streaming.p99.same', 'us', revoke.p99, 'atomics.rtt.streaming', "inval.streaming.p99's samples, likewise");
  const [b2b] = await streamingLatencies(rig, c, [() => rig.mm.revokeRange(other, other + PAGE_SIZE, null)], () => new Promise<void>((r) => setImmediate(r)));
  rig.rows.add('inval.streaming.b2b.p50', 'us', b2b.p50, 'atomics.rtt', 'as inval.streaming.p50 with the revokes back to back (one event-loop turn apart), as atomics.rtt is measured');
  rig.rows.add('inval.streaming.b2b.p99', 'us', b2b.p99, 'atomics.rtt', 'as inval.streaming.b2b.p50, p99 of each sample');
}

interface Latencies {
  readonly p50: number[];
  readonly p99: number[];
}

/**
 * p50 and p99 of each sample's calls of each of `ops` while nic0 streams
 * `c`: per sample, one streaming window per op, in turn (the ops see the
 * same load); `gap` runs between two calls.
 */
async function streamingLatencies(rig: DmaRig, c: Export, ops: readonly (() => unknown)[], gap: () => Promise<void>): Promise<Latencies[]> {
  const { o, span } = rig;
  const out = ops.map(() => ({ p50: [] as number[], p99: [] as number[] }));
  for (let k = 0; k < o.repeats; k++) {
    for (let j = 0; j < ops.length; j++) {
      const lat: number[] = [];
      let done = false;
      const s = stream(rig, 'nic0', { va: c.va, len: span, cmdBytes: MiB, untilMs: o.streamMs }).finally(() => (done = true));
      try {
        await sleep(5); // let the stream get going
        while (!done) {
          const t0 = performance.now();
          await ops[j]();
          if (!done) lat.push((performance.now() - t0) * 1000);
          await gap();
        }
      } catch (e) {
        // An op that threw (roundTripper's deadline): the stream (untilMs-bounded) is waited out,
        // so nic0 is idle before the caller tears down and its own rejection is not left unhandled.
        await s.catch(() => undefined);
        throw e;
      }
      await s;
      if (lat.length > 0) {
        out[j].p50.push(quantile(lat, 0.5));
        out[j].p99.push(quantile(lat, 0.99));
      }
    }
  }
  return out;
}

/**
 * Revokes per round of the storm: they run concurrently, so each device gets
 * them in one broadcast (at most INV_BATCH ranges) and one ack round.
 */
const STORM_BATCH = Math.min(64, INV_BATCH);

/** inval.batched and dma.p2p.storm: revokes of pages of the stream itself, STORM_BATCH ranges at a time; then `c` is verified again. */
async function revokeStormRows(rig: DmaRig, c: Export): Promise<void> {
  const { rows, o, mm, span, npages, nic0 } = rig;
  rig.log('bench:   dma: revoke storm');
  const v0 = nic0.violations().count;
  const rate: number[] = [];
  const storm: number[] = [];
  const calm: number[] = [];
  const rnd = mulberry32(42);
  let gaveUp = '';
  for (let k = 0; k < o.repeats; k++) {
    // The stream's own rate without the storm, sampled just before each storm
    // sample (after a pass that refaults the last storm's holes): the two
    // halves of one pair see the same machine load.
    if (k > 0) await stream(rig, 'nic0', { va: c.va, len: span, cmdBytes: MiB });
    calm.push(mbs(await stream(rig, 'nic0', { va: c.va, len: span, cmdBytes: MiB, untilMs: o.streamMs })));
    let done = false;
    let ranges = 0;
    // A stream that gives up under the storm (its page requests keep colliding) is a figure of 0, not a crash.
    const s = stream(rig, 'nic0', { va: c.va, len: span, cmdBytes: MiB, untilMs: o.streamMs })
      .catch((e: Error) => {
        gaveUp = e.message;
        return { bytes: 0, ms: 1 };
      })
      .finally(() => (done = true));
    await sleep(5);
    const t0 = performance.now();
    while (!done) {
      const batch = Array.from({ length: STORM_BATCH }, () => c.va + Math.floor(rnd() * npages) * PAGE_SIZE);
      await Promise.all(batch.map((a) => mm.revokeRange(a, a + PAGE_SIZE, null)));
      ranges += batch.length;
    }
    rate.push(ranges / ((performance.now() - t0) / 1000));
    storm.push(mbs(await s));
  }
  const violations = nic0.violations().count - v0;
  rows.add('inval.batched', 'ranges/s', rate, null, `revokes of random pages nic0 is streaming, ${STORM_BATCH} at once (one broadcast and ack round), refaults served first; safety violations seen: ${violations}`);
  if (violations !== 0) throw new Error(`bench: inval.batched: the safety checker saw ${violations} violation(s)`);
  rows.add('dma.p2p.storm.calm', 'MB/s', calm, null, 'the dma.p2p.storm stream without the storm (same length, commands and TLB), each sample taken just before a storm sample');
  rows.add('dma.p2p.storm', 'MB/s', storm, 'dma.p2p.storm.calm', `nic0 streaming through the inval.batched revoke storm (refaults included)${gaveUp ? `; the stream gave up at least once: ${gaveUp}` : ''}`);
  await stream(rig, 'nic0', { va: c.va, len: span, cmdBytes: MiB });
  verify(rig, 'dma.p2p.storm', c.pages, 'nic0');
}

/** memcpy.scattered and dma.p2p.scattered over an export backed by shuffled 4 KiB pages. */
async function scatteredRows(rig: DmaRig): Promise<void> {
  const { rows, o, mm, span, npages } = rig;
  rig.log('bench:   dma: scattered backing');
  const ext = rig.acc.mem!.allocContig(npages);
  const shuffled = Array.from({ length: npages }, (_, i) => ext.start + i);
  const srnd = mulberry32(7);
  for (let i = shuffled.length - 1; i > 0; i--) {
    const j = Math.floor(srnd() * (i + 1));
    [shuffled[i], shuffled[j]] = [shuffled[j], shuffled[i]];
  }
  const sc = await exportPages(rig, npages, shuffled);
  await stream(rig, 'nic0', { va: sc.va, len: span, cmdBytes: MiB });
  verify(rig, 'dma.p2p.scattered', sc.pages, 'nic0');
  await settleStream(rig.machine, 'nic0', sc.va, span);
  const copy = scatteredRate(rig.accMem, sc.pages, 2 * span);
  const onCpu: number[] = [];
  const base: number[] = [];
  const rates: number[] = [];
  // Baseline and device samples alternate (as dma.p2p.storm.calm does): load that drifts during the rows weighs on both alike.
  for (let k = 0; k < o.repeats; k++) {
    base.push(copy());
    const r = await stream(rig, 'nic0', { va: sc.va, len: span, cmdBytes: MiB, passes: 2 });
    onCpu.push(r.cpuMs / r.ms);
    rates.push(mbs(r));
  }
  rows.add('memcpy.scattered', 'MB/s', base, null, `main thread copies the ${npages} scattered 4 KiB pages dma.p2p.scattered reads, page by page, in the same order (each sample just before a dma.p2p.scattered sample)`);
  const cpu = quantile(onCpu, 0.5);
  // On-CPU share: below 1, nic0 waited for a core inside its window (the baseline, on main, may not have).
  rows.add('dma.p2p.scattered', 'MB/s', rates, 'memcpy.scattered', `as dma.p2p.contig over shuffled 4 KiB backing pages; ${Number.isFinite(cpu) ? `nic0 on a core ${(cpu * 100).toFixed(0)}% of its window (median)` : 'device on-CPU time not available on this OS'}`);
  await mm.munmap(sc.va, span);
}

/** dma.p2p.cold: a fresh export each time, first touch inside the timed window; page requests and their retries are counted. */
async function coldRows(rig: DmaRig): Promise<void> {
  const { rows, o, mm } = rig;
  rig.log('bench:   dma: cold');
  let faults = 0;
  let pages = 0;
  let retries = 0;
  const rates = await repeat(o.repeats, async () => {
    const v = await exportPages(rig, o.coldSpan / PAGE_SIZE);
    const r = await stream(rig, 'nic0', { va: v.va, len: o.coldSpan, cmdBytes: MiB });
    verify(rig, 'dma.p2p.cold', v.pages, 'nic0');
    await mm.munmap(v.va, o.coldSpan);
    faults += r.faults;
    pages += r.pagesFaulted;
    retries += r.retries;
    return mbs(r);
  });
  rows.add('dma.p2p.cold', 'MB/s', rates, 'memcpy.dram', `first touch of a fresh ${o.coldSpan / MiB} MiB export: page requests, faults and BAR mapping inside the timed window; ${faults} page requests for ${pages} pages (${o.repeats * (o.coldSpan / PAGE_SIZE)} touched), ${retries} retries`);
}

/** dma.p2p.2streams: nic0 and nic1 each stream one half of a fresh export; returns it for the bounce row. */
async function twoStreamsRows(rig: DmaRig): Promise<Export> {
  const { rows, o, span } = rig;
  rig.log('bench:   dma: two streams at once');
  const two = await exportPages(rig, rig.npages);
  const nic1 = await ImporterBinding.bind(rig.kernel, 'nic1', rig.mm);
  const half = span / 2;
  const sched: number[][] = [[], [], []]; // per sample: on-CPU share of the window (median of the two), start skew, end skew (ms)
  const both = async () => {
    // Both leave on one go (as memcpy.2threads' threads do), not one command dispatch apart.
    const line = allocLayout(StartLine);
    const streams = Promise.all([stream(rig, 'nic0', { va: two.va, len: half, cmdBytes: MiB, passes: 2, startLine: line.buffer as SharedArrayBuffer }), stream(rig, 'nic1', { va: two.va + half, len: half, cmdBytes: MiB, passes: 2, startLine: line.buffer as SharedArrayBuffer })]);
    await startTogether(line, 2, streams);
    const r = await streams;
    const t0 = Math.min(...r.map((x) => x.t0));
    const t1 = Math.max(...r.map((x) => x.t1));
    sched[0].push(quantile(r.map((x) => x.cpuMs / (t1 - t0)), 0.5));
    sched[1].push(Math.max(...r.map((x) => x.t0)) - t0);
    sched[2].push(t1 - Math.min(...r.map((x) => x.t1)));
    return r.reduce((s, x) => s + x.bytes, 0) / 1e3 / (t1 - t0);
  };
  await both();
  for (const xs of sched) xs.length = 0; // the warm-up run is not a sample
  verify(rig, 'dma.p2p.2streams', two.pages.slice(0, half / PAGE_SIZE), 'nic0');
  verify(rig, 'dma.p2p.2streams', two.pages.slice(half / PAGE_SIZE), 'nic1');
  await Promise.all([settleStream(rig.machine, 'nic0', two.va, half), settleStream(rig.machine, 'nic1', two.va + half, half)]); // nic1's worker is fresh
  // memcpy.2threads over the memory the streams read and write, its samples alternating with theirs (as
  // memcpy.scattered's do): a fresh buffer's copy rate is its allocation's (bench/memcpy.ts), and both rows need
  // both cores, so load that comes and goes between the memcpy section and this row weighs on one and not the other.
  const src = contiguous(rig.accMem, two.pages);
  const at = (off: number, dst: Uint8Array) => ({ src: src.buffer as SharedArrayBuffer, srcOff: src.byteOffset + off, dst: dst.buffer as SharedArrayBuffer, dstOff: dst.byteOffset, len: half });
  const threads = await twoThreads(half, [at(0, rig.machine.device('nic0').shm.mem!), at(half, rig.machine.device('nic1').shm.mem!)]);
  const base: number[] = [];
  const rates: number[] = [];
  try {
    await threads.sample(1); // warm, as both() was
    for (let k = 0; k < o.repeats; k++) {
      base.push(await threads.sample(2));
      rates.push(await both());
    }
  } finally {
    await threads.close();
  }
  rows.add('memcpy.2threads.same', 'MB/s', base, null, `two worker threads copy the halves dma.p2p.2streams reads (acc0's exported pages) into the memories it writes (nic0's and nic1's local), ${half / MiB} MiB each, aggregate; each sample just before a dma.p2p.2streams sample`);
  rows.add('dma.p2p.2streams', 'MB/s', rates, 'memcpy.2threads', `nic0 and nic1 each stream one half of an exported VMA at once, aggregate; ${schedNote(sched)}`);
  rows.add('dma.p2p.2streams.same', 'MB/s', rates, 'memcpy.2threads.same', 'dma.p2p.2streams\'s samples against two threads copying the same halves into the same memories, taken alternately with them');
  await nic1.close();
  return two;
}

/**
 * dma.bounce: acc0 writes `two`'s bytes into a RAM buffer by VA, nic0 reads
 * them back, pipelined as a bounce driver's staging ring would be (double
 * buffering, one span a half): acc0 fills half A of a two-span buffer;
 * then nic0 drains A while acc0 fills B with the same bytes again (both
 * leave on one start line); then nic0 drains B. Every byte still crosses
 * RAM twice, and a byte is read only after a whole span (128 MiB) was
 * written and another read since it was written, the reuse distance of
 * dma.p2p.contig's passes: nothing nic0 reads was written just now into a
 * cache (over 32 MiB spans the cmd rows read 2x memcpy.dram on a quiet
 * host, so halves of one span would not do). Timed from acc0's first byte
 * to nic0's last, on both devices' clocks, main's turnarounds between the
 * phases included.
 */
async function bounceRows(rig: DmaRig, two: Export): Promise<void> {
  const { rows, o, span } = rig;
  rig.log('bench:   dma: bounce through system RAM');
  const ram = await rig.mm.mmap({ length: 2 * span, prot: PROT_READ | PROT_WRITE });
  const accB = await ImporterBinding.bind(rig.kernel, 'acc0', rig.mm);
  const srcOff = two.pages[0] * PAGE_SIZE; // contiguous: exportPages of a fresh run
  const serial = async () => {
    const w = await stream(rig, 'acc0', { va: ram, len: span, cmdBytes: MiB, localOff: srcOff, write: true });
    const r = await stream(rig, 'nic0', { va: ram, len: span, cmdBytes: MiB });
    return span / 1e3 / (w.ms + r.ms);
  };
  await serial();
  verify(rig, 'dma.bounce.serial', two.pages, 'nic0');
  await settleStream(rig.machine, 'acc0', ram, span, { localOff: srcOff, write: true }); // acc0's write path was cold
  await settleStream(rig.machine, 'nic0', ram, span);
  rows.add('dma.bounce.serial', 'MB/s', await repeat(o.repeats, serial), 'memcpy.dram', 'as dma.bounce, one whole copy after the other (no pipelining): each at about dma.p2p.contig\'s rate');
  // Both halves hold acc0's span; nic0 drains each into the same local span.
  const fill = (half: number, startLine?: SharedArrayBuffer) => stream(rig, 'acc0', { va: ram + half * span, len: span, cmdBytes: MiB, localOff: srcOff, write: true, startLine });
  const drain = (half: number, startLine?: SharedArrayBuffer) => stream(rig, 'nic0', { va: ram + half * span, len: span, cmdBytes: MiB, startLine });
  const bounce = async () => {
    const a = await fill(0);
    const line = allocLayout(StartLine);
    const go = line.buffer as SharedArrayBuffer;
    const both = Promise.all([fill(1, go), drain(0, go)]);
    await startTogether(line, 2, both);
    await both;
    const b = await drain(1);
    return (2 * span) / 1e3 / (b.t1 - a.t0);
  };
  rig.machine.device('nic0').shm.mem!.fill(0, 0, span); // dma.bounce's check must see its own bytes
  await bounce();
  verify(rig, 'dma.bounce', two.pages, 'nic0');
  rows.add('dma.bounce', 'MB/s', await repeat(o.repeats, bounce), 'memcpy.dram', `acc0 writes a RAM buffer by VA, nic0 reads it: payload MB/s over both copies, pipelined by halves of a ${(2 * span) / MiB} MiB buffer (double buffering: nic0 drains one ${span / MiB} MiB half while acc0 fills the other, each byte read a whole half after it was written)`);
  await accB.close();
}

/**
 * Main's side of a StartLine (src/shm/start_line.ts): waits until `n`
 * devices stand at the line, then lets them go at once. `streams` is what
 * they were sent: its failure (a device that never reached the line) ends
 * the wait.
 */
async function startTogether(line: Int32Array, n: number, streams: Promise<unknown>): Promise<void> {
  let failed = false;
  streams.catch(() => (failed = true));
  const t0 = performance.now();
  for (;;) {
    const ready = Atomics.load(line, StartLine.ready);
    if (ready >= n || failed) break;
    if (performance.now() - t0 > START_LINE_DEADLINE_MS) throw new Error(`bench: start line: ${ready} of ${n} devices ready after ${START_LINE_DEADLINE_MS} ms`);
    // Pairs with Atomics.add/notify(ready) in VaSpace.waitStart (workers/runtime/va_space.ts).
    const w = Atomics.waitAsync(line, StartLine.ready, ready, 100);
    if (w.async) await w.value;
  }
  Atomics.store(line, StartLine.go, 1);
  Atomics.notify(line, StartLine.go);
}

/**
 * Where 2streams' window went besides copying (sched as twoStreamsRows
 * fills it): a device's on-CPU time is its own work (code and memory
 * stalls); the rest of the window it waited for a core, or had not started
 * (start skew) or had finished (end skew). Medians over the samples.
 */
function schedNote(sched: number[][]): string {
  const [cpu, start, end] = sched.map((xs) => quantile(xs, 0.5));
  if (!Number.isFinite(cpu)) return 'device on-CPU time not available on this OS';
  return `devices on a core ${(cpu * 100).toFixed(0)}% of the window, start skew ${start.toFixed(2)} ms, end skew ${end.toFixed(2)} ms (medians)`;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
