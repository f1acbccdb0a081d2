/**
 * The one errno list (include/uapi/asm-generic/errno-base.h, errno.h): the
 * names every refusal carries on the kernel side (PeerVmaError, vm_ops
 * verdicts, device command results) and the numbers the same errnos take
 * in SAB words (a page-request reply, src/shm/tlb_layout.ts). Declared
 * here once, below both sides, so a code written by the kernel is read
 * back as the same name by a worker. The numbers are Linux's own.
 *
 * The list holds the errnos upstream returns on the paths peervma models:
 *   EPERM      write to a read-only VMA (hmm_vma_fault), exporter policy refusal
 *   ENOENT     dmirror: a page not in the mirror's table after a migration
 *   EINTR      interrupted wait
 *   EIO        a DMA that failed (IOMMU fault, bad bus address)
 *   E2BIG      a request larger than a mailbox holds
 *   EAGAIN     non-blockable invalidation that could not take a lock
 *   ENOMEM     out of RAM / device memory
 *   EFAULT     no VMA / unreadable VMA asked to fault (hmm_vma_walk_test)
 *   EBUSY      hmm_range_fault collided with an invalidation; timeouts of
 *              dmirror_range_fault
 *   ENODEV     a device or an export that is gone: a revoked dma-buf /
 *              VFIO region (maps fail until restored)
 *   EINVAL     bad arguments (unaligned, empty), migrate over a hole,
 *              madvise(MADV_DONTNEED) of a VM_PFNMAP (device-special) VMA
 *   EOVERFLOW  an interval notifier of length 0 or past the address space
 *              (mmu_interval_notifier_insert)
 *   ENOSPC     no BAR slot / IOVA space left
 *   EOPNOTSUPP pci_p2pdma_map_type() says PCI_P2PDMA_MAP_NOT_SUPPORTED
 *   ETIMEDOUT  a device did not answer
 *   EREMOTEIO  pci_p2pdma_map_segment() / p2pdma mapping of a peer that
 *              cannot be reached (what dma_map_sgtable returns for P2P)
 */
export const ERRNO = {
  EPERM: 1,
  ENOENT: 2,
  EINTR: 4,
  EIO: 5,
  E2BIG: 7,
  EAGAIN: 11,
  ENOMEM: 12,
  EFAULT: 14,
  EBUSY: 16,
  ENODEV: 19,
  EINVAL: 22,
  ENOSPC: 28,
  EOVERFLOW: 75,
  EOPNOTSUPP: 95,
  ETIMEDOUT: 110,
  EREMOTEIO: 121,
} as const;

export type Errno = keyof typeof ERRNO;

const BY_CODE = new Map<number, Errno>(Object.entries(ERRNO).map(([n, c]) => [c, n as Errno]));

/** The number of errno `e` in a SAB word (0 stays success). */
export function errnoCode(e: Errno): number {
  return ERRNO[e];
}

/** The name of errno number `code`, read back from a SAB word. */
export function errnoName(code: number): Errno {
  const n = BY_CODE.get(code);
  if (!n) throw new RangeError(`errno code ${code} is not in src/shm/errno.ts`);
  return n;
}
