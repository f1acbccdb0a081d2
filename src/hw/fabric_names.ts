/*
 * Fabric names: how a scenario device name or PCI address becomes a PciDev,
 * and the FabricError every Fabric part throws. Shared by the verdicts, IOMMU
 * and routing parts of Fabric (fabric_verdicts.ts, fabric_iommu.ts,
 * fabric_routes.ts) so none of them imports another for names.
 *
 * Mirrors (Linux): the lookup side of pci_get_domain_bus_and_slot() (a PCI
 * address names one function) and the "is this a PCI device" test of
 * pci_p2pdma_distance_many() / the RFC's device_test_p2p().
 *
 * Stateless: every function reads the immutable PciTree built by buildPciTree().
 */
import { normalizeBdf, type PciDev, type PciTree } from './pci_tree.js';

export class FabricError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FabricError';
  }
}

/** A scenario device name, a PCI address ("0000:03:00.0" or "03:00.0"), or a free-text name. */
export function resolveDev(tree: PciTree, nameOrBdf: string): PciDev | undefined {
  return (
    tree.byDevice.get(nameOrBdf) ??
    tree.byBdf.get(normalizeBdf(nameOrBdf)) ??
    tree.devs.find((d) => d.name === nameOrBdf)
  );
}

/** resolveDev(), or a FabricError listing the devices of the topology. */
export function mustDev(tree: PciTree, nameOrBdf: string): PciDev {
  const d = resolveDev(tree, nameOrBdf);
  if (!d) throw new FabricError(`p2pdma: '${nameOrBdf}' is not a PCI device of this topology (devices: ${deviceNames(tree).join(', ') || 'none'})`);
  return d;
}

/** Scenario device names placed in the topology. */
export function deviceNames(tree: PciTree): string[] {
  return [...tree.byDevice.keys()];
}

/** Endpoint functions (what can be a P2P provider or client): scenario devices if any, else every endpoint behind a port. */
export function endpoints(tree: PciTree): PciDev[] {
  const named = tree.devs.filter((d) => d.device !== undefined);
  if (named.length) return named;
  return tree.devs.filter((d) => d.type === 'endpoint');
}

/** Display name of a function: scenario device name or PCI address. */
export function nameOf(d: PciDev): string {
  return d.device ?? d.bdf;
}
