// ImporterBinding.flushLocked keeps the upstream order (a driver's mmu
// notifier, then dma_unmap_page): invalidate the device and wait for its
// ack, then unmap its IOVAs and flush the IOTLB. Unmapping first turned DMA
// a well-behaved importer had in flight before it saw the invalidation into
// IOMMU faults (contained, but wrong: 1-5 per seed of these small runs
// before the fix). Well-behaved importers with the IOMMU on: no IOMMU fault.
import t from 'tap';
import { runStress } from '../../src/stress/run.js';

for (const seed of [1, 2]) {
  t.test(`stress seed ${seed}, IOMMU on, well-behaved importers: 0 IOMMU faults, 0 violations`, async (t) => {
    const r = await runStress({ ops: 40, importers: 2, gapMaxUs: 300, ackTimeoutMs: 2000, seed, iommu: true });
    t.equal(r.exitCode, 0);
    t.same(r.violations, []);
    t.ok(r.invalidations > 0 && r.pagesRead > 0, `invalidations ${r.invalidations}, pages read ${r.pagesRead}`);
    t.equal(r.iommuFaults, 0, 'no IOMMU fault from an importer that obeys every invalidation');
  });
}
