// The DMA engine's gather (workers/runtime/dma_engine.ts transferStep): one
// chunk copies the runs a device address range decodes to one after another
// (scattered backing pages, coalesced where they are adjacent), each run
// still passing the safety check; and the start line of streams timed
// together (src/shm/start_line.ts, workers/runtime/va_space.ts waitStart).
import t, { type Test } from 'tap';
import { Machine } from '../../src/devices/machine.js';
import type { VaStreamArgs, VaStreamResult } from '../../src/devices/protocol.js';
import { BarExporter } from '../../src/drivers/bar_exporter.js';
import { ImporterBinding } from '../../src/drivers/importer_binding.js';
import { allP2p } from '../../src/kernel/p2p_map.js';
import { Kernel } from '../../src/kernel/kernel.js';
import { PROT_READ, PROT_WRITE } from '../../src/kernel/mm.js';
import { PAGE_SIZE } from '../../src/shm/constants.js';
import { DeviceCtl } from '../../src/shm/device_ctl.js';
import { allocLayout } from '../../src/shm/layout.js';
import { StartLine } from '../../src/shm/start_line.js';
import { MiB, pattern } from '../fixtures/kernel_machine.js';

/** 64 pages: runs of 1, 2 and 3 adjacent device pages, in an order that never puts two runs side by side. */
function mixedBacking(start: number): number[] {
  const out: number[] = [];
  let next = 0;
  for (let r = 0; out.length < 64; r++) {
    const len = 1 + (r % 3);
    for (let k = 0; k < len && out.length < 64; k++) out.push(start + next + k);
    next += len + 1; // a hole after each run
  }
  // Reverse the runs' order (pages within a run stay ascending): no run follows its neighbour.
  const runs: number[][] = [];
  for (let i = 0; i < out.length; ) {
    const run = [out[i++]];
    while (i < out.length && out[i] === run[run.length - 1] + 1) run.push(out[i++]);
    runs.push(run);
  }
  return runs.reverse().flat();
}

t.test('gather', async (t) => {
  const machine = await Machine.create({
    ramBytes: 16 * MiB,
    timeoutMs: 10000,
    devices: [
      { name: 'acc0', kind: 'accelerator', memBytes: 4 * MiB, barBytes: 2 * MiB, props: {} },
      { name: 'nic0', kind: 'nic', memBytes: 2 * MiB, barBytes: 0, props: {} },
      { name: 'nic1', kind: 'nic', memBytes: 2 * MiB, barBytes: 0, props: {} },
    ],
  });
  t.teardown(() => machine.shutdown());
  await machine.start();
  const kernel = Kernel.boot(machine, { check: true, policy: allP2p });
  const mm = kernel.createMm();
  const ex = new BarExporter(kernel, 'acc0', { importers: '*', readOnly: false, requireIommu: false, cpuMappable: false });
  const nic0 = await ImporterBinding.bind(kernel, 'nic0', mm);
  const nic1 = await ImporterBinding.bind(kernel, 'nic1', mm);
  t.teardown(async () => {
    await nic0.close();
    await nic1.close();
  });
  const stream = async (dev: string, args: VaStreamArgs): Promise<VaStreamResult> => {
    const r = await machine.race(machine.device(dev).handle.call('deviceCmd', { op: 'va-stream', ...args }));
    if (r.errno !== 0) throw new Error(`va-stream: ${(r as { message?: string }).message}`);
    return r as unknown as VaStreamResult;
  };
  const n = 64;
  const len = n * PAGE_SIZE;
  const local = (dev: string) => machine.device(dev).shm.mem!.subarray(0, len);

  t.test('runs of 1-3 adjacent pages, none next to the one before: read and written bit-exact', async (t) => {
    const ext = machine.device('acc0').mem!.allocContig(2 * n);
    const pages = mixedBacking(ext.start);
    t.equal(new Set(pages).size, n);
    const { va, vma } = await ex.mmap(mm, n, pages);
    const data = pattern(len, 31);
    ex.fill(vma, 0, data);
    const r = await stream('nic0', { va, len, cmdBytes: len, passes: 50 });
    t.ok(Buffer.from(local('nic0')).equals(Buffer.from(data)), 'read: bytes equal');
    // The device thread's on-CPU time (workers/runtime/thread_cpu.ts): some, and no more than its wall time (1 ms for the reads around it).
    if (process.platform === 'linux') t.ok(r.cpuMs > 0 && r.cpuMs <= r.ms + 1, `on-CPU ${r.cpuMs} ms within wall ${r.ms} ms`);
    else t.ok(Number.isNaN(r.cpuMs), 'no on-CPU time off Linux');
    // Odd command sizes: a gather starts and ends inside pages.
    local('nic0').fill(0);
    await stream('nic0', { va: va + 100, len: len - 200, cmdBytes: len - 200, localOff: 100 });
    t.ok(Buffer.from(local('nic0').subarray(100, len - 100)).equals(Buffer.from(data.subarray(100, len - 100))), 'unaligned read: bytes equal');
    const back = pattern(len, 32);
    local('nic0').set(back);
    await stream('nic0', { va, len, cmdBytes: len, write: true });
    const accMem = machine.device('acc0').shm.mem!;
    const bad = pages.findIndex((p, i) => !Buffer.from(accMem.subarray(p * PAGE_SIZE, (p + 1) * PAGE_SIZE)).equals(Buffer.from(back.subarray(i * PAGE_SIZE, (i + 1) * PAGE_SIZE))));
    t.equal(bad, -1, 'write: every backing page holds its bytes');
    t.equal(nic0.violations().count, 0);
    await mm.munmap(va, len);
  });

  /**
   * n scattered pages exported, filled with pattern(len, seed) and warm in
   * nic0's TLB; then nic0 acks invalidations and keeps its entries, and the
   * slot of page `victim` is closed (its generation moves on).
   */
  const warmThenCloseSlot = async (t: Test, seed: number, victim: number) => {
    const ext = machine.device('acc0').mem!.allocContig(2 * n);
    const pages = Array.from({ length: n }, (_, i) => ext.start + ((i * 37) % (2 * n)));
    const { va, vma } = await ex.mmap(mm, n, pages);
    const data = pattern(len, seed);
    ex.fill(vma, 0, data);
    await stream('nic0', { va, len, cmdBytes: len }); // warm: nic0's TLB holds all n
    const slot = ex.barManager.slotOf(pages[victim]);
    const ctl = machine.device('nic0').shm.ctl;
    Atomics.store(ctl, DeviceCtl.invIgnore, 1);
    t.teardown(() => Atomics.store(ctl, DeviceCtl.invIgnore, 0));
    await ex.barManager.unmapPage(pages[victim]);
    return { va, pages, data, slot, ctl };
  };

  t.test('a stale entry inside a gathered run is caught by its generation, at its own page', async (t) => {
    const victim = 29;
    const { va, pages, data, slot, ctl } = await warmThenCloseSlot(t, 33, victim);
    const bar = ex.barManager;
    await stream('nic1', { va: va + victim * PAGE_SIZE, len: PAGE_SIZE, cmdBytes: PAGE_SIZE }); // reopens it for the same page
    t.equal(bar.slotOf(pages[victim]), slot, 'same slot, same page: only the generation tells old from new');
    const before = nic0.violations().count;
    local('nic0').fill(0);
    const r = await stream('nic0', { va, len, cmdBytes: len });
    t.equal(r.faults, 0, 'nic0 used its old entries (no page request)');
    t.ok(Buffer.from(local('nic0')).equals(Buffer.from(data)), 'bytes equal (the same page behind the slot)');
    const v = nic0.violations();
    t.equal(v.count - before, 1, 'exactly one stale use reported');
    t.equal(v.records.at(-1)!.kind, 'stale-generation');
    t.equal(v.records.at(-1)!.va, va + victim * PAGE_SIZE, 'at the stale page, not at the start of the run');
    Atomics.store(ctl, DeviceCtl.invIgnore, 0);
    await mm.munmap(va, len);
  });

  t.test('a recycled slot inside a gathered run is caught as remapped, at its own page', async (t) => {
    const victim = 41;
    const { va, data, slot, ctl } = await warmThenCloseSlot(t, 36, victim);
    const bar = ex.barManager;
    const other = await ex.mmap(mm, 1); // a page outside the window takes the lowest free slot: the victim's
    const otherData = pattern(PAGE_SIZE, 37);
    ex.fill(other.vma, 0, otherData);
    await stream('nic1', { va: other.va, len: PAGE_SIZE, cmdBytes: PAGE_SIZE });
    t.equal(bar.slotOf(ex.pageOf(other.vma, 0)), slot, 'the victim slot now maps another page');
    const before = nic0.violations().count;
    local('nic0').fill(0);
    const r = await stream('nic0', { va, len, cmdBytes: len });
    t.equal(r.faults, 0, 'nic0 used its old entries (no page request)');
    const got = local('nic0');
    t.ok(Buffer.from(got.subarray(victim * PAGE_SIZE, (victim + 1) * PAGE_SIZE)).equals(Buffer.from(otherData)), 'at the victim page it read the other mapping through the recycled slot');
    t.ok(Buffer.from(got.subarray(0, victim * PAGE_SIZE)).equals(Buffer.from(data.subarray(0, victim * PAGE_SIZE))), 'the pages before it are its own');
    const v = nic0.violations();
    t.equal(v.count - before, 1, 'exactly one remapped use reported');
    t.equal(v.records.at(-1)!.kind, 'remapped');
    t.equal(v.records.at(-1)!.va, va + victim * PAGE_SIZE, 'at the recycled page, not at the start of the run');
    Atomics.store(ctl, DeviceCtl.invIgnore, 0);
    await mm.munmap(other.va, PAGE_SIZE);
    await mm.munmap(va, len);
  });

  t.test('a start line: both streams wait for go, then start after it', async (t) => {
    const { va, vma } = await ex.mmap(mm, n);
    ex.fill(vma, 0, pattern(len, 34));
    const line = allocLayout(StartLine);
    const startLine = line.buffer as SharedArrayBuffer;
    const half = len / 2;
    const both = Promise.all([stream('nic0', { va, len: half, cmdBytes: half, startLine }), stream('nic1', { va: va + half, len: half, cmdBytes: half, startLine })]);
    while (Atomics.load(line, StartLine.ready) < 2) await new Promise((r) => setTimeout(r, 1));
    await new Promise((r) => setTimeout(r, 30));
    const go = performance.timeOrigin + performance.now();
    Atomics.store(line, StartLine.go, 1);
    Atomics.notify(line, StartLine.go);
    const r = await both;
    for (const x of r) t.ok(x.t0 >= go - 1, `a stream started ${(x.t0 - go).toFixed(2)} ms after go, not before`);
    t.ok(Buffer.from(local('nic0').subarray(0, half)).equals(Buffer.from(pattern(len, 34).subarray(0, half))), 'nic0 read its half');
    await mm.munmap(va, len);
  });
});

t.test('behind an IOMMU: a gathered run stops at an unmapped IOVA, faults once, the pages before it moved', async (t) => {
  const machine = await Machine.create({
    ramBytes: 16 * MiB,
    timeoutMs: 10000,
    devices: [{ name: 'nic0', kind: 'nic', memBytes: 1 * MiB, barBytes: 0, props: {} }],
  });
  t.teardown(() => machine.shutdown());
  await machine.start();
  const kernel = Kernel.boot(machine, { check: true, policy: allP2p, iommu: ['nic0'] });
  const mm = kernel.createMm();
  const nic0 = await ImporterBinding.bind(kernel, 'nic0', mm);
  t.teardown(() => nic0.close());
  const n = 8;
  const len = n * PAGE_SIZE;
  const va = await mm.mmap({ length: len, prot: PROT_READ | PROT_WRITE });
  const data = pattern(len, 35);
  await mm.write(va, data);
  const call = (args: VaStreamArgs) => machine.race(machine.device('nic0').handle.call('deviceCmd', { op: 'va-stream', ...args }));
  const local = machine.device('nic0').shm.mem!.subarray(0, len);
  t.equal((await call({ va, len, cmdBytes: len })).errno, 0, 'warm: nic0 holds all eight translations (IOVAs)');
  t.ok(Buffer.from(local).equals(Buffer.from(data)));
  const ctl = machine.device('nic0').shm.ctl;
  Atomics.store(ctl, DeviceCtl.invIgnore, 1); // nic0 keeps its device TLB; its IOTLB is flushed all the same
  t.teardown(() => Atomics.store(ctl, DeviceCtl.invIgnore, 0));
  const hole = 5;
  await mm.munmap(va + hole * PAGE_SIZE, PAGE_SIZE);
  const dom = kernel.domain('nic0')!;
  const before = dom.faults().count;
  local.fill(0);
  const r = await call({ va, len, cmdBytes: len });
  t.equal(r.errno, 'EIO');
  t.match((r as { message?: string }).message, /IOMMU fault: device nic0, IOVA 0x[0-9a-f]+, read access: IOVA not mapped/);
  t.equal(dom.faults().count - before, 1, 'one access, one IOMMU fault');
  t.ok(Buffer.from(local.subarray(0, hole * PAGE_SIZE)).equals(Buffer.from(data.subarray(0, hole * PAGE_SIZE))), 'the pages before the hole were copied');
  t.ok(local.subarray(hole * PAGE_SIZE).every((b) => b === 0), 'nothing from the hole on');
  t.equal(nic0.violations().count, 0, 'blocked, so nothing to report');
});
