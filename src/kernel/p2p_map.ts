/**
 * The P2P policies the kernel asks before two devices may talk, when no
 * topology (src/hw's Fabric) is given. The types of the RFC's driver
 * interface quoted below (VmOps, P2pMapResult, P2pPolicy) are in
 * kernel_types.ts.
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
import type { P2pPolicy } from './kernel_types.js';

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
