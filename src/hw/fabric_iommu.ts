/*
 * Fabric IOMMU: is the IOMMU on for a device, and which IOMMU group is it in.
 *
 * Mirrors (Linux): iommu_group_get()->id, device_iommu_mapped() (the IOMMU
 * of the device's root complex), the grouping itself in iommu_groups.ts
 * (pci_device_group()).
 *
 * Lifetime: one per Fabric, built with it; the tree is immutable.
 *   groupsCache — written by groups() only, on first use.
 */
import { computeIommuGroups, type IommuGroup } from './iommu_groups.js';
import type { PciDev, PciTree } from './pci_tree.js';
import { FabricError, mustDev } from './fabric_names.js';

export class FabricIommu {
  readonly tree: PciTree;
  private groupsCache: { groups: IommuGroup[]; groupOf: Map<PciDev, IommuGroup> } | null = null; // written by: groups() only

  constructor(tree: PciTree) {
    this.tree = tree;
  }

  iommuEnabledFor(device: string): boolean {
    return mustDev(this.tree, device).rc.iommu;
  }

  iommuGroups(): IommuGroup[] {
    return this.groups().groups;
  }

  iommuGroupOf(device: string): number {
    const g = this.groups().groupOf.get(mustDev(this.tree, device));
    if (!g) throw new FabricError(`iommu: ${device} has no IOMMU group (host bridge function)`);
    return g.id;
  }

  private groups() {
    return (this.groupsCache ??= computeIommuGroups(this.tree));
  }
}
