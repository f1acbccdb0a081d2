// BAR slot recycling under a cyclic stream (issue 11): an importer cycling
// through buffers larger than the BAR window must not thrash it. LRU evicts
// exactly the pages needed next, so every pass refaults everything; the
// exporter's drop-behind (src/kernel/bar_manager.ts, "Recycling policy")
// takes the pages just behind the stream, which a cyclic stream needs last.
// Each eviction is one invalidation range of adjacent pages.
import t from 'tap';
import { allP2p } from '../../src/kernel/p2p_map.js';
import { PAGE_SIZE } from '../../src/shm/constants.js';
import { BarExporter } from '../../src/drivers/bar_exporter.js';
import { KiB, kernelMachine, MiB, mirrorSpec, pattern, openMirrors, bytesEq } from '../fixtures/kernel_machine.js';

t.test('a cyclic stream through 3 buffers of 4 pages behind an 8-slot BAR', async (t) => {
  const { kernel } = await kernelMachine(t, [mirrorSpec('m0'), mirrorSpec('exp', 1 * MiB, 32 * KiB)], { check: true, policy: allP2p });
  const mm = kernel.createMm();
  const [d0] = await openMirrors(t, kernel, mm, ['m0']);
  const ex = new BarExporter(kernel, 'exp', { importers: '*', readOnly: false, requireIommu: false, cpuMappable: false });
  const bar = ex.barManager;
  const pages = 12;
  const { va, vma } = await ex.mmap(mm, pages);
  const data = pattern(pages * PAGE_SIZE, 31);
  ex.fill(vma, 0, data);
  const inv = kernel.invalidator('m0');
  // The stream reads 2 pages at a time (its fault window), buffer after buffer, round and round.
  const pass = async () => {
    for (let p = 0; p < pages; p += 2) bytesEq(t, (await d0.read(va + p * PAGE_SIZE, 2)).data, data.subarray(p * PAGE_SIZE, (p + 2) * PAGE_SIZE), `pages ${p}, ${p + 1}`);
  };
  await pass(); // first touch fills the window, then recycles
  const recycled0 = bar.recycled;
  const ranges0 = inv.stats.ranges;
  const sent0 = inv.stats.sent;
  const passes = 4;
  for (let k = 0; k < passes; k++) await pass();
  const recycled = bar.recycled - recycled0;
  // 12 pages through 8 slots: at least 4 must come back per pass; LRU brings back all 12.
  t.ok(recycled >= 4 * passes, `slots recycled over ${passes} passes: ${recycled}`);
  t.ok(recycled <= 6 * passes, `no thrashing: ${recycled} slots recycled over ${passes} passes (LRU: ${12 * passes})`);
  t.equal(inv.stats.ranges - ranges0, inv.stats.sent - sent0, 'each eviction invalidated one range');
  t.equal(d0.violations().count, 0, 'no stale or remapped access');
  await mm.munmap(va, pages * PAGE_SIZE);
});

t.test('premap: an export is mapped into free slots at mmap, and its first faults need no new slot', async (t) => {
  const { kernel } = await kernelMachine(t, [mirrorSpec('m0'), mirrorSpec('exp', 1 * MiB, 32 * KiB)], { check: true, policy: allP2p });
  const mm = kernel.createMm();
  const [d0] = await openMirrors(t, kernel, mm, ['m0']);
  const ex = new BarExporter(kernel, 'exp', { importers: '*', readOnly: false, requireIommu: false, cpuMappable: false, premap: true });
  const bar = ex.barManager;
  const { va, vma } = await ex.mmap(mm, 12);
  t.equal(bar.mappedSlots, 8, 'the first 8 of 12 pages fill the 8-slot window at mmap');
  t.ok(bar.slotOf(ex.pageOf(vma, 7)) !== undefined && bar.slotOf(ex.pageOf(vma, 8)) === undefined, 'from the start of the buffer');
  t.equal(bar.holdersOf(ex.pageOf(vma, 0)), 0, 'nobody holds them yet');
  const data = pattern(12 * PAGE_SIZE, 33);
  ex.fill(vma, 0, data);
  bytesEq(t, (await d0.read(va, 8)).data, data.subarray(0, 8 * PAGE_SIZE), 'the first 8 pages read through the premapped slots');
  t.equal(bar.recycled, 0, 'no slot changed page');
  t.equal(bar.holdersOf(ex.pageOf(vma, 0)), 1, 'the fault made the importer a holder');
  bytesEq(t, (await d0.read(va + 8 * PAGE_SIZE, 4)).data, data.subarray(8 * PAGE_SIZE), 'the rest recycles as usual');
  t.equal(d0.violations().count, 0);
  await mm.munmap(va, 12 * PAGE_SIZE);
});
