/*
 * Fabric: the PCIe tree of one scenario plus the questions the rest of
 * peervma asks it. A thin facade over one part per concern, so callers hold
 * one object:
 *   fabric_names.ts     device name / PCI address → PciDev, FabricError
 *   fabric_verdicts.ts  may these two devices do P2P and how (policy mode on
 *                       top of the kernel's answer, cached per pair)
 *   fabric_iommu.ts     is the IOMMU on, which IOMMU group
 *   fabric_routes.ts    which links a transfer crosses (bandwidth model)
 *
 * Mirrors (Linux): pci_p2pdma_map_type() + its per-pair cache,
 * pci_p2pdma_distance_many(), pci_p2pmem_find_many(), the RFC's
 * pci_test_p2p() / device_test_p2p(), iommu_group_get()->id — each in the
 * part named above.
 *
 * Lifetime: built once per scenario by buildFabric() (topology.ts); the tree
 * is immutable afterwards. The parts are built with the Fabric and live as
 * long; routes share the verdicts part (and so its cache).
 */
import type { BwResource, BwResult } from './bandwidth.js';
import type { IommuGroup } from './iommu_groups.js';
import type { MapTypeResult } from './p2pdma.js';
import type { PciDev, PciTree } from './pci_tree.js';
import type { PolicyMode } from './topology_schema.js';
import { deviceNames, endpoints, nameOf, resolveDev } from './fabric_names.js';
import { FabricVerdicts, type MapTypeVerdict, type P2pTest } from './fabric_verdicts.js';
import { FabricIommu } from './fabric_iommu.js';
import { FabricRoutes, type FabricFlow, type FabricRoute } from './fabric_routes.js';

export { FabricError } from './fabric_names.js';
export type { MapTypeVerdict, P2pTest } from './fabric_verdicts.js';
export type { FabricRoute, FabricFlow } from './fabric_routes.js';

export class Fabric {
  readonly tree: PciTree;
  readonly seed: number;
  readonly policy: PolicyMode;
  private readonly verdicts: FabricVerdicts;
  private readonly iommu: FabricIommu;
  private readonly routes: FabricRoutes;

  constructor(tree: PciTree, seed: number) {
    this.tree = tree;
    this.seed = seed;
    this.policy = tree.policy;
    this.verdicts = new FabricVerdicts(tree, seed);
    this.iommu = new FabricIommu(tree);
    this.routes = new FabricRoutes(tree, this.verdicts);
  }

  /* ---------------- names (fabric_names.ts) ---------------- */

  /** A scenario device name, a PCI address ("0000:03:00.0" or "03:00.0"), or a free-text name. */
  resolve(nameOrBdf: string): PciDev | undefined {
    return resolveDev(this.tree, nameOrBdf);
  }

  /** Scenario device names placed in the topology. */
  deviceNames(): string[] {
    return deviceNames(this.tree);
  }

  /** Endpoint functions (what can be a P2P provider or client): scenario devices if any, else every endpoint behind a port. */
  endpoints(): PciDev[] {
    return endpoints(this.tree);
  }

  /** Display name of a function: scenario device name or PCI address. */
  nameOf(d: PciDev): string {
    return nameOf(d);
  }

  /* ---------------- P2P policy (fabric_verdicts.ts) ---------------- */

  /** The kernel's calc_map_type_and_dist(), without the policy mode and uncached. */
  calcMapTypeAndDist(provider: string, client: string): MapTypeResult {
    return this.verdicts.calcMapTypeAndDist(provider, client);
  }

  /** upstream_bridge_distance() of 2019. */
  upstreamBridgeDistance(a: string, b: string): number {
    return this.verdicts.upstreamBridgeDistance(a, b);
  }

  /** May `client` DMA to `provider`'s memory, and how (policy mode applied; cached per pair). */
  mapType(provider: string, client: string): MapTypeVerdict {
    return this.verdicts.mapType(provider, client);
  }

  /** Number of cached pairs (for tests). */
  get cachedPairs(): number {
    return this.verdicts.cachedPairs;
  }

  /** The RFC's pci_test_p2p(): 2019 rule, upstream_bridge_distance() ≥ 0. */
  pciTestP2p(a: string, b: string): P2pTest {
    return this.verdicts.pciTestP2p(a, b);
  }

  /** The RFC's device_test_p2p(): false for non-PCI devices, else the policy mode's verdict. */
  deviceTestP2p(a: string, b: string): P2pTest {
    return this.verdicts.deviceTestP2p(a, b);
  }

  /** p2pmem_find(clients): the provider closest to all clients, ties broken by the scenario seed. */
  p2pmemFind(clients: string[], providers?: string[]): ReturnType<FabricVerdicts['p2pmemFind']> {
    return this.verdicts.p2pmemFind(clients, providers);
  }

  /* ---------------- IOMMU (fabric_iommu.ts) ---------------- */

  iommuEnabledFor(device: string): boolean {
    return this.iommu.iommuEnabledFor(device);
  }

  iommuGroups(): IommuGroup[] {
    return this.iommu.iommuGroups();
  }

  iommuGroupOf(device: string): number {
    return this.iommu.iommuGroupOf(device);
  }

  /* ---------------- bandwidth model (fabric_routes.ts) ---------------- */

  /** Every resource of the model: both directions of every link, each RC's fabric and RAM, interconnects. */
  bandwidthResources(): BwResource[] {
    return this.routes.bandwidthResources();
  }

  /** Resources a transfer src → dst crosses (see FabricRoutes.route()). */
  route(src: string, dst: string, via: 'auto' | 'p2p' | 'bounce' = 'auto'): FabricRoute {
    return this.routes.route(src, dst, via);
  }

  /** Run the bandwidth model on transfers between devices/RAM. */
  modelFlows(flows: FabricFlow[]): BwResult & { routes: Record<string, FabricRoute> } {
    return this.routes.modelFlows(flows);
  }
}
