// An exporter recycling BAR slots under one importer invalidates only the
// importers that hold mappings of the range (ImporterBinding.holdsNothingIn):
// the others get nothing to ack, as with upstream's per-range interval
// notifiers. Anonymous memory is not filtered: every importer still gets
// those invalidations.
import t from 'tap';
import { allP2p } from '../../src/kernel/p2p_map.js';
import { PAGE_SIZE } from '../../src/shm/constants.js';
import { BarExporter } from '../../src/drivers/bar_exporter.js';
import { PROT_READ, PROT_WRITE } from '../../src/kernel/mm.js';
import { KiB, kernelMachine, MiB, mirrorSpec, pattern, openMirrors, bytesEq } from '../fixtures/kernel_machine.js';

t.test('BAR recycling under m0 does not invalidate m1, which holds nothing there', async (t) => {
  const { kernel } = await kernelMachine(t, [mirrorSpec('m0'), mirrorSpec('m1'), mirrorSpec('exp', 1 * MiB, 16 * KiB)], { check: true, policy: allP2p });
  const mm = kernel.createMm();
  const [d0] = await openMirrors(t, kernel, mm, ['m0', 'm1']);
  const ex = new BarExporter(kernel, 'exp', { importers: '*', readOnly: false, requireIommu: false, cpuMappable: false });
  const n = 12;
  const { va, vma } = await ex.mmap(mm, n);
  const data = pattern(n * PAGE_SIZE, 41);
  ex.fill(vma, 0, data);
  const inv0 = kernel.invalidator('m0');
  const inv1 = kernel.invalidator('m1');
  const sent0 = inv0.stats.sent;
  const sent1 = inv1.stats.sent;
  bytesEq(t, (await d0.read(va, n)).data, data, 'm0 reads 12 pages through 4 slots');
  t.ok(ex.barManager.revokedForReuse > 0, `held slots were recycled (${ex.barManager.revokedForReuse})`);
  t.ok(inv0.stats.sent > sent0, 'm0, the holder, was invalidated');
  t.equal(inv1.stats.sent, sent1, 'm1 was not: it holds nothing of the export');
  t.equal(d0.violations().count, 0);

  const anon = await mm.mmap({ length: PAGE_SIZE, prot: PROT_READ | PROT_WRITE });
  await mm.revokeRange(anon, anon + PAGE_SIZE, null);
  t.equal(inv1.stats.sent, sent1 + 1, 'an anonymous range still reaches every importer');
  await mm.munmap(va, n * PAGE_SIZE);
});
