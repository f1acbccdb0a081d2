// The list version of the exporter's mapping (BarExporter.p2pMapRuns ->
// BarManager.mapPageRuns, called by hmmRangeFault's walkDeviceVmaRuns for a
// sparse page request): only the pages of the runs are mapped, in one call,
// results indexed by window page; a short run fills the owner's hold that
// covers it, a long one gets its own; the policy and a revoked run refuse
// as p2pMap does; through the kernel, a request with many holes costs the
// exporter one call, and the bytes stay exact.
import t from 'tap';
import { Machine } from '../../src/devices/machine.js';
import { BarExporter } from '../../src/drivers/bar_exporter.js';
import { ImporterBinding } from '../../src/drivers/importer_binding.js';
import { allP2p } from '../../src/kernel/p2p_map.js';
import { Kernel } from '../../src/kernel/kernel.js';
import { deviceQuery } from '../../src/workloads/command_runner.js';
import { PAGE_SIZE } from '../../src/shm/constants.js';
import { FAULT_WINDOW } from '../../src/shm/tlb_layout.js';
import { MiB, pattern } from '../fixtures/kernel_machine.js';

async function rig(t: { teardown(fn: () => unknown): void }, span: number) {
  const machine = await Machine.create({
    ramBytes: 16 * MiB,
    timeoutMs: 10000,
    devices: [
      { name: 'acc0', kind: 'accelerator', memBytes: 2 * span, barBytes: span, props: {} },
      { name: 'nic0', kind: 'nic', memBytes: Math.max(span, MiB), barBytes: 0, props: {} },
      { name: 'nic1', kind: 'nic', memBytes: MiB, barBytes: 0, props: {} },
    ],
  });
  t.teardown(() => machine.shutdown());
  await machine.start();
  const kernel = Kernel.boot(machine, { check: true, policy: allP2p });
  const mm = kernel.createMm();
  return { machine, kernel, mm };
}

t.test('mapPageRuns maps only the runs, one hold per long run, a short run into the hold covering it', async (t) => {
  const npages = 64;
  const { kernel, mm } = await rig(t, npages * PAGE_SIZE);
  const ex = new BarExporter(kernel, 'acc0');
  const { va, vma } = await ex.mmap(mm, npages);
  const nic = kernel.ref('nic0');
  const bar = ex.barManager;

  // A first map of pages [0, 40) as one run: one hold.
  const first = await ex.p2pMapRuns(vma, nic, va, npages, Int32Array.of(0, 40), false);
  t.ok(first.ok);
  if (!first.ok) return;
  t.equal(bar.stats.maps, 1);
  t.equal(bar.stats.mappedPages, 40);
  t.equal(first.bus[40], 0, 'a page outside the runs has no bus address');
  t.not(first.bus[39], 0);

  // Holes 3 and [10, 12) of that hold, plus a long run [44, 64) outside it.
  bar.release('nic0@' + mm.name, va + 3 * PAGE_SIZE, va + 4 * PAGE_SIZE);
  bar.release('nic0@' + mm.name, va + 10 * PAGE_SIZE, va + 12 * PAGE_SIZE);
  const calls0 = ex.mapCalls;
  const r = await ex.p2pMapRuns(vma, nic, va, npages, Int32Array.of(3, 4, 10, 12, 44, 64), false);
  t.ok(r.ok);
  if (!r.ok) return;
  t.equal(ex.mapCalls - calls0, 1, 'three runs, one exporter call');
  t.equal(bar.stats.mappedPages, 40 + 1 + 2 + 20, 'only the pages of the runs were mapped');
  for (const i of [3, 10, 11, 44, 63]) t.equal(r.bus[i], bar.busOf(bar.slotOf(ex.pageOf(vma, i))!), `page ${i}: the bus address of its slot`);
  t.equal(r.bus[20], 0, 'a page between the runs has no entry');
  for (const i of [3, 10, 20, 50]) t.equal(bar.holdersOf(ex.pageOf(vma, i)), 1, `page ${i} held once`);
  t.equal(r.gens[44], Atomics.load(kernel.machine.device('acc0').shm.barGen!, ex.pageOf(vma, 44)), 'generations are the BAR generations');

  // The short runs went into the first hold: releasing [0, 40) frees them with it; the long run kept its own hold.
  t.equal(bar.release('nic0@' + mm.name, va, va + 40 * PAGE_SIZE), 40, 'the first hold covers its holes again');
  t.equal(bar.holdersOf(ex.pageOf(vma, 3)), 0);
  t.equal(bar.holdersOf(ex.pageOf(vma, 50)), 1, 'the long run is its own hold');
});

t.test('p2pMapRuns refuses as p2pMap does: policy, and a run the exporter revoked', async (t) => {
  const npages = 32;
  const { kernel, mm } = await rig(t, npages * PAGE_SIZE);
  const ex = new BarExporter(kernel, 'acc0', { importers: ['nic0'], readOnly: true, requireIommu: false, cpuMappable: false });
  const { va, vma } = await ex.mmap(mm, npages);
  const other = await ex.p2pMapRuns(vma, kernel.ref('nic1'), va, npages, Int32Array.of(0, 2), false);
  t.match(other, { ok: false, errno: 'EPERM' }, 'an importer the policy does not name');
  const write = await ex.p2pMapRuns(vma, kernel.ref('nic0'), va, npages, Int32Array.of(0, 2), true);
  t.match(write, { ok: false, errno: 'EPERM' }, 'a write to a read-only export');
  await ex.revokeAccess(vma, va + 20 * PAGE_SIZE, va + 21 * PAGE_SIZE);
  const revoked = await ex.p2pMapRuns(vma, kernel.ref('nic0'), va, npages, Int32Array.of(0, 2, 20, 21), false);
  t.match(revoked, { ok: false, errno: 'ENODEV' }, 'a run holding a revoked page');
  const fine = await ex.p2pMapRuns(vma, kernel.ref('nic0'), va, npages, Int32Array.of(0, 2, 22, 24), false);
  t.ok(fine.ok, 'runs around the revoked page map');
  t.equal(ex.refusals, 3);
});

t.test('through the kernel: a request with many holes is one exporter call, bytes exact', async (t) => {
  const span = 2 * FAULT_WINDOW * PAGE_SIZE;
  const { machine, kernel, mm } = await rig(t, span);
  const ex = new BarExporter(kernel, 'acc0');
  const bind = await ImporterBinding.bind(kernel, 'nic0', mm);
  t.teardown(() => bind.close());
  const nic = machine.device('nic0');
  const stream = () => deviceQuery(machine, nic, { op: 'va-stream', va, len: span, cmdBytes: 256 * 1024 });
  const { va, vma } = await ex.mmap(mm, span / PAGE_SIZE);
  ex.fill(vma, 0, pattern(span, 5));
  await stream();
  const holes: number[] = [];
  for (let p = 1; p < span / PAGE_SIZE; p += 9) holes.push(p);
  for (const p of holes) await mm.revokeRange(va + p * PAGE_SIZE, va + (p + 1) * PAGE_SIZE, null);
  const data = pattern(span, 6);
  ex.fill(vma, 0, data);
  const calls0 = ex.mapCalls;
  const req0 = bind.requests;
  const r = await stream();
  const requests = bind.requests - req0;
  t.equal(r.pagesFaulted, holes.length, `the ${holes.length} holes were installed`);
  t.ok(requests < holes.length / 8, `${holes.length} holes took ${requests} page requests (a window's holes, however far apart, go in one)`);
  t.equal(ex.mapCalls - calls0, requests, 'one exporter call per request, not one per hole');
  t.ok(Buffer.from(nic.shm.mem!.subarray(0, span)).equals(Buffer.from(data)), 'bytes equal through the refaulted holes');
  t.equal(bind.violations().count, 0, 'the safety checker saw no stale use');
  await mm.munmap(va, span);
});
