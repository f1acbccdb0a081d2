/*
 * IOMMU groups: the smallest sets of functions the IOMMU can isolate from
 * each other, derived from ACS along the path, as the kernel does.
 *
 * Mirrors (Linux):
 *   drivers/iommu/iommu.c  pci_device_group(), get_pci_function_alias_group(),
 *                          REQ_ACS_FLAGS (SV | RR | CR | UF)
 *   drivers/pci/pci.c      pci_acs_enabled(), pci_acs_path_enabled()
 *
 * Algorithm (pci_device_group): start at the function; walk up the buses
 * towards the root; at each bus, if the bridge above it has
 * pci_acs_path_enabled(bridge → root, REQ_ACS_FLAGS) stop, otherwise the
 * function joins the bridge's group (group root moves up to the bridge).
 * Then, for a multifunction group root without ACS, all functions of the
 * same slot without ACS share one group (get_pci_function_alias_group).
 * DMA aliases (PCIe-to-PCI bridges, quirks) are not modelled.
 *
 * Groups are computed for every root complex; for one with its IOMMU off
 * they are the groups the machine *would* have (its ACS bits as set now),
 * and `iommu` says so.
 */
import { PCI_ACS_EC, pciAcsFlagsEnabled, REQ_ACS_FLAGS } from './acs.js';
import type { PciDev, PciTree } from './pci_tree.js';

/**
 * pci_acs_enabled(pdev, flags): downstream and root ports must implement
 * ACS; endpoints/upstream ports only matter when multifunction; single
 * functions of other types are trivially isolated.
 */
export function pciAcsEnabled(d: PciDev, flags: number): boolean {
  switch (d.type) {
    case 'downstream-port':
    case 'root-port':
      return pciAcsFlagsEnabled(d.acs, flags);
    case 'endpoint':
    case 'upstream-port':
    case 'rc-endpoint':
      if (!d.multifunction) return true;
      return pciAcsFlagsEnabled(d.acs, flags);
    default:
      return true;
  }
}

/** pci_acs_path_enabled(start, NULL, flags): every function from start up to the root bus. */
export function pciAcsPathEnabled(start: PciDev, flags: number): boolean {
  for (let d: PciDev | null = start; d; d = d.parent) {
    if (!pciAcsEnabled(d, flags)) return false;
  }
  return true;
}

export interface IommuGroup {
  id: number;
  rcName: string;
  /** IOMMU of that root complex is on (groups exist) or off (would-be groups). */
  iommu: boolean;
  members: PciDev[];
  /** Why the members are together (empty for a singleton). */
  why: string[];
}

export function computeIommuGroups(tree: PciTree): { groups: IommuGroup[]; groupOf: Map<PciDev, IommuGroup> } {
  // 1. group root per function (pci_device_group's upstream walk).
  const rootOf = new Map<PciDev, PciDev>();
  const whyOf = new Map<PciDev, string>();
  for (const d of tree.devs) {
    let p = d;
    let why = '';
    for (let bridge = d.parent; bridge; bridge = bridge.parent) {
      if (pciAcsPathEnabled(bridge, REQ_ACS_FLAGS)) break;
      if (!why) why = `not isolated by ACS: ${acsMissing(bridge)}`;
      p = bridge;
    }
    rootOf.set(d, p);
    if (why) whyOf.set(d, why);
  }
  // 2. function aliasing: multifunction group roots without ACS share a group.
  const key = (d: PciDev): string => {
    const r = rootOf.get(d)!;
    if (r.multifunction && !pciAcsEnabled(r, REQ_ACS_FLAGS)) return `${r.domain}:${r.bus}:${r.devNum}:*`;
    return r.bdf;
  };
  const byKey = new Map<string, PciDev[]>();
  for (const d of tree.devs) {
    if (d.type === 'host-bridge') continue;
    const k = key(d);
    (byKey.get(k) ?? byKey.set(k, []).get(k)!).push(d);
  }
  const groups: IommuGroup[] = [];
  const groupOf = new Map<PciDev, IommuGroup>();
  let id = 0;
  for (const [k, members] of byKey) {
    const why = new Set<string>();
    for (const m of members) {
      const w = whyOf.get(m);
      if (w) why.add(w);
    }
    if (k.endsWith(':*')) why.add(`functions of multifunction device ${members[0].bdf.slice(0, -2)} have no ACS (${acsMissing(rootOf.get(members[0])!)}), so they are not isolated from each other`);
    const g: IommuGroup = { id: id++, rcName: members[0].rc.name, iommu: members[0].rc.iommu, members, why: members.length > 1 ? [...why] : [] };
    groups.push(g);
    for (const m of members) groupOf.set(m, g);
  }
  return { groups, groupOf };
}

function acsMissing(d: PciDev): string {
  for (let x: PciDev | null = d; x; x = x.parent) {
    if (!pciAcsEnabled(x, REQ_ACS_FLAGS)) {
      if (x.acs.cap === null) return `${x.bdf} has no ACS capability`;
      const want = REQ_ACS_FLAGS & (x.acs.cap | PCI_ACS_EC);
      const miss = want & ~x.acs.ctl;
      const names = ['SV', 'TB', 'RR', 'CR', 'UF'].filter((_, i) => miss & (1 << i));
      return `${x.bdf} ACSCtl lacks ${names.join(' ')}`;
    }
  }
  return 'ACS incomplete';
}
