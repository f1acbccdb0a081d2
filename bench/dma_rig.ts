/**
 * Data-path rows of `peervma bench`: a device (nic0) streams by process VA
 * from a peer's exported VMA (acc0's memory behind a BarExporter), with no
 * workload compute: the `va-stream` device command (workers/runtime/
 * va_stream.ts) loops VaSpace reads of `cmdBytes` each. Every figure is
 * the worker's own time for whole passes; every layout is verified once
 * byte for byte against the exporter's memory (a bench that moves the
 * wrong bytes fast is worth nothing).
 *
 *   dma.p2p.contig     contiguous backing, 1 MiB commands, warm TLB
 *   dma.p2p.64k        the same, 64 KiB commands
 *   inval.streaming.*  round trip of a revoke (notifier path) that the
 *                      streaming device must ack between two DMA chunks
 *   inval.batched      revokes of pages in the stream, 8 at a time, while
 *                      it streams: ranges/s, with the safety checker's
 *                      violation count; dma.p2p.storm is that stream's rate
 *   dma.p2p.scattered  backing = shuffled 4 KiB device pages
 *   dma.p2p.cold       first touch: page requests, hmmRangeFault, BAR
 *                      mapping and replies inside the window
 *   dma.p2p.2streams   nic0 and nic1, one half of the VMA each, at once
 *   dma.bounce         acc0 writes a RAM buffer by VA, nic0 reads it: two copies
 *
 * The span (DMA_SPAN, 128 MiB) is DRAM scale like memcpy.dram; it is below
 * 256 MiB because one device's BAR2 window is at most 240 MiB here.
 */
import { Machine } from '../src/devices/machine.js';
import { BarExporter } from '../src/drivers/bar_exporter.js';
import { ImporterBinding } from '../src/drivers/importer_binding.js';
import { mulberry32 } from '../src/hw/p2pdma.js';
import { Kernel } from '../src/kernel/kernel.js';
import { PROT_READ, PROT_WRITE } from '../src/kernel/mm.js';
import type { P2pPolicy } from '../src/kernel/kernel_types.js';
import type { VaStreamArgs, VaStreamResult } from '../src/devices/protocol.js';
import { PAGE_SIZE } from '../src/shm/constants.js';
import { MiB } from '../src/workloads/memcpy_baseline.js';
import { scatteredRate } from './memcpy.js';
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
  const span = o.span;
  const npages = span / PAGE_SIZE;
  const machine = await Machine.create({
    ramBytes: span + 16 * MiB,
    timeoutMs: 20000,
    devices: [
      { name: 'acc0', kind: 'accelerator', memBytes: span + o.coldSpan + 4 * MiB, barBytes: span, props: {} },
      { name: 'nic0', kind: 'nic', memBytes: span, barBytes: 0, props: {} },
      { name: 'nic1', kind: 'nic', memBytes: span / 2, barBytes: 0, props: {} },
    ],
  });
  try {
    await machine.start();
    const kernel = Kernel.boot(machine, { policy: oneSwitch, check: true });
    const mm = kernel.createMm();
    const ex = new BarExporter(kernel, 'acc0', { importers: '*', readOnly: false, requireIommu: false, cpuMappable: false });
    const acc = machine.device('acc0');
    const accMem = acc.shm.mem!;
    const nic0 = await ImporterBinding.bind(kernel, 'nic0', mm);

    const stream = async (dev: string, args: VaStreamArgs): Promise<VaStreamResult> => {
      const r = await machine.race(machine.device(dev).handle.call('deviceCmd', { op: 'va-stream', ...args }));
      if (r.errno !== 0) throw new Error(`bench: va-stream on ${dev} failed: ${(r as { message?: string }).message}`);
      return r as unknown as VaStreamResult;
    };
    /** The exporter's bytes of `pages`, in VMA order, must equal the importer's local [0, +len). */
    const verify = (what: string, pages: readonly number[], dev: string, localOff = 0) => {
      const local = machine.device(dev).shm.mem!;
      for (let i = 0; i < pages.length; i++) {
        const a = Buffer.from(accMem.buffer, accMem.byteOffset + pages[i] * PAGE_SIZE, PAGE_SIZE);
        const b = Buffer.from(local.buffer, local.byteOffset + localOff + i * PAGE_SIZE, PAGE_SIZE);
        if (!a.equals(b)) throw new Error(`bench: ${what}: ${dev} read wrong bytes at page ${i} (device page ${pages[i]})`);
      }
    };
    const pattern = (pages: readonly number[], seed: number) => {
      const rnd = mulberry32(seed);
      for (const p of pages) {
        const w = new Int32Array(accMem.buffer, accMem.byteOffset + p * PAGE_SIZE, PAGE_SIZE / 4);
        for (let k = 0; k < w.length; k += 64) w[k] = (rnd() * 0x7fffffff) | 0;
        w[w.length - 1] = p;
      }
    };
    const exportPages = async (n: number, backing?: number[]) => {
      const m = await ex.mmap(mm, n, backing);
      const pages = Array.from({ length: n }, (_, i) => ex.pageOf(m.vma, i));
      pattern(pages, n ^ pages[0]);
      return { ...m, pages };
    };

    // ---- contiguous backing, warm ----
    log('bench:   dma: contiguous backing, warm');
    const c = await exportPages(npages);
    await stream('nic0', { va: c.va, len: span, cmdBytes: MiB }); // faults everything in
    verify('dma.p2p.contig', c.pages, 'nic0');
    rows.add('dma.p2p.contig', 'MB/s', await repeat(o.repeats, async () => mbs(await stream('nic0', { va: c.va, len: span, cmdBytes: MiB, passes: 2 }))), 'memcpy.dram', `nic0 reads ${span / MiB} MiB of acc0's exported VMA by VA, 1 MiB commands, TLB warm`);
    rows.add('dma.p2p.64k', 'MB/s', await repeat(o.repeats, async () => mbs(await stream('nic0', { va: c.va, len: span, cmdBytes: 64 * 1024, passes: 2 }))), 'memcpy.dram', 'as dma.p2p.contig, 64 KiB commands');

    // ---- invalidation while streaming ----
    log('bench:   dma: invalidation while streaming');
    const other = await mm.mmap({ length: PAGE_SIZE, prot: PROT_READ | PROT_WRITE });
    const p50: number[] = [];
    const p99: number[] = [];
    for (let k = 0; k < o.repeats; k++) {
      const lat: number[] = [];
      let done = false;
      const s = stream('nic0', { va: c.va, len: span, cmdBytes: MiB, untilMs: o.streamMs }).finally(() => (done = true));
      await sleep(5); // let the stream get going
      while (!done) {
        const t0 = performance.now();
        await mm.revokeRange(other, other + PAGE_SIZE, null);
        if (!done) lat.push((performance.now() - t0) * 1000);
        await sleep(0);
      }
      await s;
      if (lat.length > 0) {
        p50.push(quantile(lat, 0.5));
        p99.push(quantile(lat, 0.99));
      }
    }
    rows.add('inval.streaming.p50', 'us', p50, 'atomics.rtt', 'revoke (notifier path) of a page the stream does not use, acked by nic0 while it streams; p50 of each sample');
    rows.add('inval.streaming.p99', 'us', p99, 'atomics.rtt', 'as inval.streaming.p50, p99 of each sample');

    // ---- revoke storm: pages of the stream itself, 8 ranges at a time ----
    log('bench:   dma: revoke storm');
    const v0 = nic0.violations().count;
    const rate: number[] = [];
    const storm: number[] = [];
    const rnd = mulberry32(42);
    let gaveUp = '';
    for (let k = 0; k < o.repeats; k++) {
      let done = false;
      let ranges = 0;
      // A stream that gives up under the storm (its page requests keep colliding) is a figure of 0, not a crash.
      const s = stream('nic0', { va: c.va, len: span, cmdBytes: MiB, untilMs: o.streamMs })
        .catch((e: Error) => {
          gaveUp = e.message;
          return { bytes: 0, ms: 1 };
        })
        .finally(() => (done = true));
      await sleep(5);
      const t0 = performance.now();
      while (!done) {
        const batch = Array.from({ length: 8 }, () => c.va + Math.floor(rnd() * npages) * PAGE_SIZE);
        await Promise.all(batch.map((a) => mm.revokeRange(a, a + PAGE_SIZE, null)));
        ranges += batch.length;
      }
      rate.push(ranges / ((performance.now() - t0) / 1000));
      storm.push(mbs(await s));
    }
    const violations = nic0.violations().count - v0;
    rows.add('inval.batched', 'ranges/s', rate, null, `revokes of pages nic0 is streaming, 8 per batch; safety violations seen: ${violations}`);
    if (violations !== 0) throw new Error(`bench: inval.batched: the safety checker saw ${violations} violation(s)`);
    rows.add('dma.p2p.storm', 'MB/s', storm, 'dma.p2p.contig', `nic0 streaming through the inval.batched revoke storm (refaults included)${gaveUp ? `; the stream gave up at least once: ${gaveUp}` : ''}`);
    await stream('nic0', { va: c.va, len: span, cmdBytes: MiB });
    verify('dma.p2p.storm', c.pages, 'nic0');
    await mm.munmap(c.va, span);

    // ---- scattered backing ----
    log('bench:   dma: scattered backing');
    const ext = acc.mem!.allocContig(npages);
    const shuffled = Array.from({ length: npages }, (_, i) => ext.start + i);
    const srnd = mulberry32(7);
    for (let i = shuffled.length - 1; i > 0; i--) {
      const j = Math.floor(srnd() * (i + 1));
      [shuffled[i], shuffled[j]] = [shuffled[j], shuffled[i]];
    }
    const sc = await exportPages(npages, shuffled);
    rows.add('memcpy.scattered', 'MB/s', await repeat(o.repeats, scatteredRate(accMem, sc.pages, 2 * span)), null, `main thread copies the ${npages} scattered 4 KiB pages dma.p2p.scattered reads, page by page`);
    await stream('nic0', { va: sc.va, len: span, cmdBytes: MiB });
    verify('dma.p2p.scattered', sc.pages, 'nic0');
    rows.add('dma.p2p.scattered', 'MB/s', await repeat(o.repeats, async () => mbs(await stream('nic0', { va: sc.va, len: span, cmdBytes: MiB, passes: 2 }))), 'memcpy.scattered', 'as dma.p2p.contig over shuffled 4 KiB backing pages');
    await mm.munmap(sc.va, span);

    // ---- cold: a fresh mapping each time ----
    log('bench:   dma: cold');
    rows.add(
      'dma.p2p.cold',
      'MB/s',
      await repeat(o.repeats, async () => {
        const v = await exportPages(o.coldSpan / PAGE_SIZE);
        const r = await stream('nic0', { va: v.va, len: o.coldSpan, cmdBytes: MiB });
        verify('dma.p2p.cold', v.pages, 'nic0');
        await mm.munmap(v.va, o.coldSpan);
        return mbs(r);
      }),
      'memcpy.dram',
      `first touch of a fresh ${o.coldSpan / MiB} MiB export: page requests, faults and BAR mapping inside the timed window`,
    );

    // ---- two streams at once ----
    log('bench:   dma: two streams at once');
    const two = await exportPages(npages);
    const nic1 = await ImporterBinding.bind(kernel, 'nic1', mm);
    const half = span / 2;
    const both = async () => {
      const r = await Promise.all([stream('nic0', { va: two.va, len: half, cmdBytes: MiB, passes: 2 }), stream('nic1', { va: two.va + half, len: half, cmdBytes: MiB, passes: 2 })]);
      return r.reduce((s, x) => s + x.bytes, 0) / 1e3 / (Math.max(...r.map((x) => x.t1)) - Math.min(...r.map((x) => x.t0)));
    };
    await both();
    verify('dma.p2p.2streams', two.pages.slice(0, half / PAGE_SIZE), 'nic0');
    verify('dma.p2p.2streams', two.pages.slice(half / PAGE_SIZE), 'nic1');
    rows.add('dma.p2p.2streams', 'MB/s', await repeat(o.repeats, both), 'memcpy.2threads', 'nic0 and nic1 each stream one half of an exported VMA at once, aggregate');
    await nic1.close();

    // ---- bounce through system RAM ----
    log('bench:   dma: bounce through system RAM');
    const ram = await mm.mmap({ length: span, prot: PROT_READ | PROT_WRITE });
    const accB = await ImporterBinding.bind(kernel, 'acc0', mm);
    const srcOff = two.pages[0] * PAGE_SIZE; // contiguous: exportPages of a fresh run
    const bounce = async () => {
      const w = await stream('acc0', { va: ram, len: span, cmdBytes: MiB, localOff: srcOff, write: true });
      const r = await stream('nic0', { va: ram, len: span, cmdBytes: MiB });
      return span / 1e3 / (w.ms + r.ms);
    };
    await bounce();
    verify('dma.bounce', two.pages, 'nic0');
    rows.add('dma.bounce', 'MB/s', await repeat(o.repeats, bounce), 'memcpy.dram', 'acc0 writes a RAM buffer by VA, then nic0 reads it: payload MB/s over both copies');
    await accB.close();
    await nic0.close();
    await mm.exit();
  } finally {
    await machine.shutdown();
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
