/**
 * The RFC's driver interface for device-special VMAs and the P2P policy
 * hook the kernel asks before two devices may talk.
 *
 * Mirrors J. Glisse, "mm/vma: add support for peer to peer to device vma"
 * (RFC patch 3/5): two callbacks added to struct vm_operations_struct,
 *
 *   long (*p2p_map)(struct vm_area_struct *vma, struct device *device,
 *                   unsigned long start, unsigned long end,
 *                   dma_addr_t *pa, bool write);
 *   long (*p2p_unmap)(struct vm_area_struct *vma, struct device *device,
 *                     unsigned long start, unsigned long end,
 *                     dma_addr_t *pa);
 *
 * and, for HMM device memory (patch 4/5), the devmem p2p callback that
 * returns how many pages it mapped (0 = refuse, so the page migrates back).
 *
 * Contract (from the RFC text), enforced by the exporters in src/drivers:
 * - the exporter alone decides (importer allowed? read-only? IOMMU needed?
 *   BAR budget?); a refusal is an errno with a readable reason;
 * - a range that was mapped once stays mappable while the VMA is valid
 *   (the exporter may revoke — invalidate and remap — but not refuse later);
 * - importers obey invalidation: after the exporter invalidates a range and
 *   the acks are in, no importer uses the old bus addresses.
 */
import type { Errno } from '../errors.js';
import type { Vma } from './vma.js';

/** The importing device, as the kernel names it (struct device *). */
export interface DeviceRef {
  readonly name: string;
  readonly index: number;
}

/** vm_operations_struct of a device-special VMA. */
export interface VmOps {
  /** Name for messages ("bar-exporter of gpu0"). */
  readonly name: string;
  /** Most pages one p2pMap call can map (the BAR budget); importers fault in windows no larger. */
  readonly maxMapPages?: number;
  /** p2p_map: bus addresses (one per page of [start, end)) or an errno with a reason. */
  p2pMap?(vma: Vma, importer: DeviceRef, start: number, end: number, write: boolean): Promise<P2pMapResult>;
  /** p2p_unmap: the importer dropped its mapping of [start, end). */
  p2pUnmap?(vma: Vma, importer: DeviceRef, start: number, end: number): void;
  /** CPU access (only for CPU-mappable exports): a view of the bytes of one page, or an errno. */
  cpuPage?(vma: Vma, addr: number, write: boolean): Uint8Array | Errno;
  /** The VMA is going away (munmap, exit): release what backs it. Called after the unmap invalidation. */
  close?(vma: Vma): Promise<void>;
}

export type P2pMapResult =
  | { readonly ok: true; readonly bus: readonly number[]; readonly gens: readonly number[]; readonly mem: number; readonly pages: readonly number[] }
  | { readonly ok: false; readonly errno: Errno; readonly reason: string };

/** pci_p2pdma_map_type() answer, as src/hw will give it. */
export interface P2pVerdict {
  readonly map: 'bus-addr' | 'thru-host-bridge' | 'not-supported';
  readonly distance: number;
  readonly reason: string;
}

/**
 * Injected topology policy: can `client` reach `provider`'s memory?
 * Workloads pass src/hw's Fabric verdicts (workloads/kernel_boot.ts,
 * fabricPolicy); a kernel booted without one refuses every pair
 * (noFabricPolicy), as pci_p2pdma_distance() refuses what it cannot prove.
 */
export type P2pPolicy = (provider: DeviceRef, client: DeviceRef) => P2pVerdict;

/** Kernel.boot's default: no topology, so no pair is known to reach another. */
export const noFabricPolicy: P2pPolicy = () => ({
  map: 'not-supported',
  distance: -1,
  reason: 'the kernel was booted without a fabric policy (Kernel.boot opts.policy: the topology\'s fabricPolicy, or allP2p for a machine where every pair may talk)',
});

/** Every pair behind one switch: an explicit choice for test machines without a topology. */
export const allP2p: P2pPolicy = () => ({ map: 'bus-addr', distance: 4, reason: 'allP2p policy: every pair is treated as behind one switch' });

/** A policy refusing P2P between the named pairs (tests, scenarios without topology). */
export function denyPairs(pairs: readonly [string, string][]): P2pPolicy {
  return (p, c) =>
    pairs.some(([a, b]) => (a === p.name && b === c.name) || (a === c.name && b === p.name))
      ? { map: 'not-supported', distance: -1, reason: `${c.name} and ${p.name} do not share an upstream bridge (policy)` }
      : allP2p(p, c);
}
