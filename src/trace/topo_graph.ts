/**
 * The PCIe fabric as a drawable graph: root complexes, the functions below
 * them as a tree (root ports, switch upstream/downstream ports with their
 * ACS bits and links, endpoints), IOMMU groups, and every P2P pair with
 * the fabric's verdict. One model for every picture: `topo --format dot`
 * (topo_dot.ts), `topo --format svg` and the HTML report (topo_svg.ts).
 *
 * Read-only over a Fabric (src/hw): mapType() in both directions per pair,
 * iommuGroups(), the tree. The host-bridge function of a root complex is
 * folded into the root complex's own node (it is what the RC node stands
 * for).
 */
import { acsRedirBits, formatAcs } from '../hw/acs.js';
import type { Fabric } from '../hw/fabric.js';
import type { PciDev, PciDevType } from '../hw/pci_tree.js';
import { formatLink } from '../hw/pcie_link.js';

export type Verdict = 'bus-addr' | 'thru-host-bridge' | 'not-supported';

export interface TopoNode {
  readonly id: string;
  readonly kind: PciDevType | 'root-complex';
  /** First line: the device name, the switch port role, or the root complex. */
  readonly title: string;
  /** Further lines: BDF, link, ACS control bits, IOMMU state. */
  readonly lines: readonly string[];
  /** IOMMU group of the function (null: root complex, or no group). */
  readonly group: number | null;
  /** ACS redirect (RR/CR) is set on this port: peer TLPs go up to the root complex. */
  readonly redirect: boolean;
  readonly switchName?: string;
  /** Scenario device name of an endpoint. */
  readonly device?: string;
  readonly children: TopoNode[];
}

export interface P2pPair {
  /** Device names (or BDFs), a before b in the matrix order. */
  readonly a: string;
  readonly b: string;
  /** mapType(a, b) and mapType(b, a): provider first. */
  readonly ab: Verdict;
  readonly ba: Verdict;
  /** The less direct of the two (the colour of the pair). */
  readonly worst: Verdict;
  readonly distance: number;
}

export interface TopoGraph {
  readonly policy: string;
  readonly roots: readonly TopoNode[];
  readonly groups: readonly { readonly id: number; readonly iommu: boolean; readonly members: readonly string[] }[];
  /** Matrix order. */
  readonly devices: readonly string[];
  readonly matrix: readonly { readonly provider: string; readonly client: string; readonly map: Verdict; readonly distance: number }[];
  readonly pairs: readonly P2pPair[];
}

/** Colours and words per verdict, shared by DOT, SVG and the report legend. */
export const VERDICT_STYLE: Readonly<Record<Verdict, { readonly colour: string; readonly label: string; readonly dash: boolean }>> = {
  'bus-addr': { colour: '#2e7d32', label: 'P2P by bus address (below a common switch)', dash: false },
  'thru-host-bridge': { colour: '#ef6c00', label: 'P2P through the host bridge (root complex)', dash: false },
  'not-supported': { colour: '#c62828', label: 'no P2P (refused: bounce through RAM)', dash: true },
};

const RANK: Record<Verdict, number> = { 'bus-addr': 0, 'thru-host-bridge': 1, 'not-supported': 2 };

const ROLE: Partial<Record<PciDevType, string>> = {
  'root-port': 'root port',
  'upstream-port': 'switch upstream',
  'downstream-port': 'switch downstream',
  'rc-endpoint': 'RC endpoint',
};

function nodeOf(d: PciDev, groupOf: Map<PciDev, number>): TopoNode {
  const lines = [d.bdf];
  if (d.link) lines.push(formatLink(d.link.gen, d.link.width));
  if (d.acs.cap !== null && d.type !== 'endpoint') lines.push(`ACSCtl ${formatAcs(d.acs.ctl)}`);
  const title = d.device ?? (d.type === 'endpoint' ? (d.name ?? 'endpoint') : `${d.switchName ? `${d.switchName} ` : ''}${ROLE[d.type] ?? d.type}`);
  return {
    id: d.bdf,
    kind: d.type,
    title,
    lines,
    group: groupOf.get(d) ?? null,
    redirect: acsRedirBits(d.acs) !== 0,
    switchName: d.switchName,
    device: d.device,
    children: d.children.filter((c) => c.type !== 'host-bridge').map((c) => nodeOf(c, groupOf)),
  };
}

export function topoGraph(fabric: Fabric, names: readonly string[]): TopoGraph {
  const groupOf = new Map<PciDev, number>();
  const groups = fabric.iommuGroups();
  for (const g of groups) for (const m of g.members) groupOf.set(m, g.id);
  const roots: TopoNode[] = fabric.tree.rcs.map((rc) => ({
    id: `rc:${rc.name}`,
    kind: 'root-complex',
    title: rc.name,
    lines: [`[${rc.domain.toString(16).padStart(4, '0')}:${rc.bus.toString(16).padStart(2, '0')}]${rc.hostBridgeId ? ` ${rc.hostBridgeId}` : ''}`, `IOMMU ${rc.iommu ? 'on' : 'off'}`],
    group: null,
    redirect: false,
    children: rc.rootBus.filter((d) => d.type !== 'host-bridge').map((d) => nodeOf(d, groupOf)),
  }));
  const matrix = names.flatMap((p) =>
    names.map((c) => {
      const v = fabric.mapType(p, c);
      return { provider: p, client: c, map: v.map as Verdict, distance: v.distance };
    }),
  );
  const at = (p: string, c: string) => matrix.find((m) => m.provider === p && m.client === c)!;
  const pairs: P2pPair[] = [];
  names.forEach((a, i) =>
    names.slice(i + 1).forEach((b) => {
      const ab = at(a, b);
      const ba = at(b, a);
      const worst = RANK[ab.map] >= RANK[ba.map] ? ab : ba;
      pairs.push({ a, b, ab: ab.map, ba: ba.map, worst: worst.map, distance: worst.distance });
    }),
  );
  return {
    policy: fabric.policy,
    roots,
    groups: groups.map((g) => ({ id: g.id, iommu: g.iommu, members: g.members.map((m) => m.device ?? m.bdf) })),
    devices: names,
    matrix,
    pairs,
  };
}
