/*
 * Generated topologies: `topology: { generate: { ... } }` in a scenario
 * becomes a full `topology:` spec (topology_schema.ts validates the
 * result like any written one), shaped like a DGX-style box:
 *
 *   rc0 (socket 0) - 01.0 root port - plx0 (top switch)
 *                                       +- 00.0 - sw0 (leaf): fanout devices
 *                                       +- 01.0 - sw1 (leaf): fanout devices
 *   rc1 (socket 1) - 01.0 root port - plx1 - sw2, sw3 ...
 *
 * With `topSwitch: false` (DGX-1 style) each leaf switch sits on a root
 * port of its own (01.0, 02.0, ...): devices on different leaves then
 * reach each other only through the host bridge.
 *
 * Every device sits on a leaf switch; leaf switches share their RC's top
 * switch, whose uplink (the root port's link) every bounce through system
 * RAM crosses twice. Devices under one RC reach each other at bus
 * addresses (common upstream bridge: the top switch, or their leaf);
 * across the two RCs only through the host bridges (policy `iommu`; the
 * host bridge is Intel Skylake-SP 8086:2020, on the kernel's whitelist).
 *
 * Placement: `groups` are devices that talk to each other (the workload's
 * P2P pairs, joined); a group is kept on one leaf switch when it fits the
 * fan-out, else spread over consecutive leaves. Leaves are split evenly
 * over the root complexes, in order.
 *
 * Mirrors: nothing in the kernel (firmware / what a bus scan would find).
 */
import { z } from 'zod';
import { LinkSpecSchema, POLICY_MODES, TopologySchema, type TopologyInput, type TopologySpec } from './topology_schema.js';

/** A host bridge on pci_p2pdma_whitelist[] (Intel Skylake-SP), so cross-RC P2P is possible under policy iommu. */
const GEN_HOST_BRIDGE = '8086:2020';
/** A PCIe Gen4 switch (Broadcom PEX88096), for lspci-style ids. */
const GEN_SWITCH_ID = '1000:c010';
/** Device numbers on one bus (PCI device 0..31). */
const MAX_PORTS = 32;

export const GenerateSpecSchema = z.strictObject({
  rootComplexes: z.int().min(1).max(2).default(1).describe('root complexes (one per CPU socket)'),
  fanout: z.int().min(1).max(MAX_PORTS).default(4).describe('devices per leaf switch'),
  // (The cast: LinkSpecSchema's width union is typed by its first two literals only.)
  link: LinkSpecSchema.default({ gen: 4, width: 16 } as unknown as z.output<typeof LinkSpecSchema>).describe('every link: root port, switch ports, devices'),
  topSwitch: z.boolean().default(true).describe('true: the leaf switches of a root complex hang off one top switch (DGX-2 style, P2P between leaves at bus addresses); false: each leaf switch on a root port of its own (DGX-1 style, P2P between leaves through the host bridge)'),
  policy: z.enum(POLICY_MODES).default('rfc-v1'),
  iommu: z.boolean().default(false),
});
export type GenerateSpec = z.output<typeof GenerateSpecSchema>;

/** Leaf switches of fanout slots, filled group by group. */
function placeDevices(groups: readonly (readonly string[])[], fanout: number): string[][] {
  const leaves: string[][] = [];
  for (const g of groups) {
    let cur = leaves[leaves.length - 1];
    // A group that fits a leaf is not split: start a new leaf when the current one has no room for it.
    if (!cur || (g.length <= fanout && cur.length + g.length > fanout)) leaves.push((cur = []));
    for (const d of g) {
      if (cur.length === fanout) leaves.push((cur = []));
      cur.push(d);
    }
  }
  return leaves;
}

const slot = (i: number) => `${i.toString(16).padStart(2, '0')}.0`;

/** The full topology for `devices` (every one placed once), validated by TopologySchema. */
export function generateTopology(g: GenerateSpec, groups: readonly (readonly string[])[]): TopologySpec {
  const leaves = placeDevices(groups, g.fanout);
  const perRc = Math.ceil(leaves.length / g.rootComplexes);
  if (perRc > MAX_PORTS - 1) throw new Error(`topology.generate: ${leaves.length} leaf switches of ${g.fanout} devices need ${perRc} ports per root complex; at most ${MAX_PORTS - 1} (raise fanout or rootComplexes)`);
  const link = g.link;
  const rcs: TopologyInput['rootComplexes'] = [];
  for (let r = 0; r < g.rootComplexes; r++) {
    const mine = leaves.slice(r * perRc, (r + 1) * perRc);
    if (mine.length === 0) continue;
    const leafPorts = mine.map((devs, k) => ({
      slot: slot(g.topSwitch ? k : k + 1),
      link,
      switch: { name: `sw${r * perRc + k}`, id: GEN_SWITCH_ID, ports: devs.map((device, j) => ({ slot: slot(j), link, endpoint: { device } })) },
    }));
    rcs.push({
      name: `rc${r}`,
      id: GEN_HOST_BRIDGE,
      socket: r,
      iommu: g.iommu,
      ports: g.topSwitch ? [{ slot: '01.0', link, switch: { name: `plx${r}`, id: GEN_SWITCH_ID, ports: leafPorts } }] : leafPorts,
    });
  }
  return TopologySchema.parse({ policy: g.policy, rootComplexes: rcs });
}

/**
 * Groups of devices that talk to each other: the pairs joined (union-find),
 * each group in the order its first device is listed; devices in no pair
 * are groups of one.
 */
export function affinityGroups(devices: readonly string[], pairs: readonly (readonly [string, string])[]): string[][] {
  const parent = new Map(devices.map((d) => [d, d]));
  const find = (x: string): string => {
    let r = x;
    while (parent.get(r) !== r) r = parent.get(r)!;
    parent.set(x, r);
    return r;
  };
  for (const [a, b] of pairs) {
    if (!parent.has(a) || !parent.has(b)) continue;
    const ra = find(a);
    const rb = find(b);
    if (ra !== rb) parent.set(rb, ra);
  }
  const groups = new Map<string, string[]>();
  for (const d of devices) {
    const r = find(d);
    if (!groups.has(r)) groups.set(r, []);
    groups.get(r)!.push(d);
  }
  return [...groups.values()];
}
