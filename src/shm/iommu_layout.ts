/**
 * IOMMU domain page table in SAB: IOVA -> bus address, one entry per 4 KiB
 * IOVA page, walked by device workers themselves (workers/runtime/
 * iommu_walk.ts), written by the kernel (src/kernel/iommu.ts).
 *
 * Mirrors, at the level that matters here, an IOMMU second-level page
 * table (intel-iommu's dma_pte, iommu_map()/iommu_unmap()) plus the fault
 * record register a driver reads after a DMA remapping fault.
 *
 * Protocol (one PTE):
 *
 *   main (IommuDomain.map/unmap)            device worker (IommuWalk)
 *   ----------------------------            -------------------------
 *   map:   store pfn                        perm = Atomics.load(pte.perm)
 *          Atomics.store(pte.perm, p)       if perm == 0: IOMMU fault
 *   unmap: Atomics.store(pte.perm, 0)       pfn = load(pte.pfn); cache in IOTLB
 *          post IOTLB flush (invalidation)
 *          wait for the ack
 *          only then reuse the IOVA/page
 *   [Required: after the flush ack, no DMA of any device attached to the
 *    domain reaches the old pfn through this IOVA]
 *
 * Draining (one-device domains: the IOTLB flush rides with the device-TLB
 * invalidation, one post and one ack, as intel-iommu's cache_tag_flush_range
 * queues both descriptors and waits once in qi_submit_sync):
 *
 *   main, just before posting batch S       device worker (IommuWalk, miss)
 *   store drainSeq := S                     perm = Atomics.load(pte.perm)
 *   Atomics.store(perm, perm | DRAIN)       if DRAIN and invAck >= S: fault
 *   post S (holds the IOVA); wait for ack   (the device acked the flush)
 *   after the ack: perm := 0, reuse         else translate (in flight, as an
 *                                             ATC serves until invalidated)
 *   [Required: once the device acked S, no walk of that PTE succeeds, and
 *    S's ranges flushed what the IOTLB held: a device that kept stale VA
 *    translations cannot refill its IOTLB between the ack and the unmap]
 *
 * `fenced` is the kill switch: a device that did not ack an invalidation in
 * time is cut off. The walk loads it on *every* translation, IOTLB hit or
 * not, so fencing does not depend on the device acking anything.
 */
import { defineLayout } from './layout.js';

/** First IOVA handed out (IOVA 0 stays unmapped to catch null DMA). */
export const IOVA_BASE = 0x10_0000;

export const IommuDomainHdr = defineLayout({
  nPages: { writer: 'main', doc: 'IOVA pages covered by the table; IOVA page i is IOVA_BASE + i * PAGE_SIZE' },
  fenced: { writer: 'main', doc: '1 = every DMA of every device in the domain is blocked (device did not ack in time)' },
  faultCount: { writer: 'worker', doc: 'IOMMU faults recorded (DMA to an unmapped or read-only IOVA)' },
  lastFaultIova: { words: 2, writer: 'worker', doc: 'IOVA of the last fault (u64)' },
  lastFaultWrite: { writer: 'worker', doc: '1 when the last faulting access was a write' },
  lastFaultDevice: { writer: 'worker', doc: 'device index that made the last faulting access' },
});

/** One page-table entry; entries start at IommuDomainHdr.kFieldCount. */
export const IommuPte = defineLayout({
  pfn: { writer: 'main', doc: 'bus page number (bus address >> PAGE_SHIFT)' },
  perm: { writer: 'main', doc: 'IOMMU_READ | IOMMU_WRITE (| IOMMU_DRAIN); 0 = not present. Stored last on map and drain, first on unmap' },
  drainSeq: { writer: 'main', doc: 'with IOMMU_DRAIN: the invalidation seq whose ack ends every walk of this PTE. Stored before perm' },
});

export const IOMMU_READ = 1;
export const IOMMU_WRITE = 2;
/** Being unmapped: walks succeed only until the device acks the post numbered drainSeq. */
export const IOMMU_DRAIN = 4;

/** Word index of the PTE of IOVA page `i`. */
export function iommuPteWord(i: number): number {
  return IommuDomainHdr.kFieldCount + i * IommuPte.kFieldCount;
}

export function iommuDomainWords(nPages: number): number {
  return iommuPteWord(nPages);
}
