// p2p_unmap releases the importer's hold on BAR slots (issue 12 item 5): the
// exporter tracks slot users per (importer, process, range); a slot nobody
// holds is reused without an invalidation, a held one only after revoking
// its holder. Both exporters: a device-special VMA (BarExporter) and HMM
// device-private memory (DevMem).
import t from 'tap';
import { PAGE_SIZE } from '../../src/shm/constants.js';
import { BarExporter } from '../../src/drivers/bar_exporter.js';
import type { P2pPolicy } from '../../src/kernel/kernel_types.js';
import { KiB, kernelMachine, MiB, mirrorSpec, pattern, openMirrors } from '../fixtures/kernel_machine.js';

const oneSwitch: P2pPolicy = () => ({ map: 'bus-addr', distance: 2, reason: 'test: one switch' });
const RW = 3;

t.test('p2pUnmap', async (t) => {
  // exp: 1 MiB of memory behind a 16 KiB (4-slot) BAR window.
  const { kernel } = await kernelMachine(t, [mirrorSpec('m0'), mirrorSpec('m1'), mirrorSpec('exp', 1 * MiB, 16 * KiB)], { check: true, policy: oneSwitch });
  const mm = kernel.createMm();
  const [d0, d1] = await openMirrors(t, kernel, mm, ['m0', 'm1']);
  const inv0 = kernel.invalidator('m0');

  t.test('an unmapped range frees its slots of holders; reusing them sends no invalidation', async (t) => {
    const ex = new BarExporter(kernel, 'exp', { importers: '*', readOnly: false, requireIommu: false, cpuMappable: false });
    const bar = ex.barManager;
    const a = await ex.mmap(mm, 4);
    const b = await ex.mmap(mm, 4);
    ex.fill(a.vma, 0, pattern(4 * PAGE_SIZE, 21));
    ex.fill(b.vma, 0, pattern(4 * PAGE_SIZE, 22));
    t.same((await d0.read(a.va, 4)).data, pattern(4 * PAGE_SIZE, 21));
    const pagesA = [0, 1, 2, 3].map((i) => ex.pageOf(a.vma, i));
    t.same(pagesA.map((p) => bar.holdersOf(p)), [1, 1, 1, 1], 'm0 holds the 4 slots it mapped');
    t.equal(bar.mappedSlots, 4, 'the window is full');

    // The importer drops its translations (an invalidation of the range): after the ack it calls p2pUnmap.
    const unmaps0 = ex.unmapCalls;
    await mm.revokeRange(a.va, a.va + 4 * PAGE_SIZE, null);
    t.ok(ex.unmapCalls > unmaps0, 'the importer called p2pUnmap after its ack');
    t.same(pagesA.map((p) => bar.holdersOf(p)), [0, 0, 0, 0], 'nobody holds the slots any more');
    t.equal(bar.mappedSlots, 4, 'the slots stay mapped until someone needs them');

    // B needs the 4 slots: they are taken without invalidating anyone.
    const sent = inv0.stats.sent;
    const recycled = bar.recycled;
    const revoked = bar.revokedForReuse;
    t.same((await d0.read(b.va, 4)).data, pattern(4 * PAGE_SIZE, 22), 'B reads correctly through the reused slots');
    t.equal(bar.recycled - recycled, 4, 'four slots changed page');
    t.equal(bar.revokedForReuse - revoked, 0, 'none of them needed a revoke');
    t.equal(inv0.stats.sent - sent, 0, 'no invalidation was sent to the importer');

    // Contrast: B is held, so reading A again must revoke m0's translations of B first.
    t.same((await d0.read(a.va, 4)).data, pattern(4 * PAGE_SIZE, 21), 'A again');
    t.equal(bar.revokedForReuse - revoked, 4, 'held slots are taken back only through a revoke');
    t.ok(inv0.stats.sent > sent, 'which invalidated the importer');
    t.equal(d0.violations().count, 0, 'no stale or remapped access');
    await mm.munmap(a.va, 4 * PAGE_SIZE);
    await mm.munmap(b.va, 4 * PAGE_SIZE);
  });

  t.test('two importers: a slot stays held until both unmapped', async (t) => {
    const ex = new BarExporter(kernel, 'exp', { importers: '*', readOnly: false, requireIommu: false, cpuMappable: false });
    const bar = ex.barManager;
    const a = await ex.mmap(mm, 2);
    ex.fill(a.vma, 0, pattern(2 * PAGE_SIZE, 23));
    await d0.read(a.va, 2);
    await d1.read(a.va, 2);
    const p0 = ex.pageOf(a.vma, 0);
    t.equal(bar.holdersOf(p0), 2, 'one hold per importer');
    t.equal(bar.stats.maps >= 2, true);
    // A revoke of the range reaches both importers (one notifier each): both unmap.
    await mm.revokeRange(a.va, a.va + 2 * PAGE_SIZE, null);
    t.equal(bar.holdersOf(p0), 0);
    t.ok(bar.stats.unmappedPages >= 4, `pages released counted (${bar.stats.unmappedPages})`);
    await mm.munmap(a.va, 2 * PAGE_SIZE);
  });

  t.test('device-private memory: a peer\'s hold on the owner\'s BAR slot is released by DevMem.p2pUnmap', async (t) => {
    const n = 2;
    const va = await mm.mmap({ length: n * PAGE_SIZE, prot: RW });
    await mm.write(va, pattern(n * PAGE_SIZE, 24));
    await d0.migrateToDev(va, n);
    t.same((await d1.read(va, n)).data, pattern(n * PAGE_SIZE, 24), 'm1 reads m0\'s private pages through m0\'s BAR');
    const bar = kernel.bar('m0');
    const dm = kernel.devmem('m0');
    const pages = [...dm.rmap.entries()].filter(([, m]) => m.va >= va && m.va < va + n * PAGE_SIZE).map(([p]) => p);
    t.equal(pages.length, n);
    t.same(pages.map((p) => bar.holdersOf(p)), [1, 1], 'm1 holds the slots');
    const u0 = dm.unmapCalls;
    await mm.revokeRange(va, va + n * PAGE_SIZE, null);
    t.ok(dm.unmapCalls > u0, 'the importer called the devmem unmap');
    t.same(pages.map((p) => bar.holdersOf(p)), [0, 0], 'released');
    t.equal(d1.violations().count, 0);
    await mm.munmap(va, n * PAGE_SIZE);
  });
});
