/*
 * Scenario topology → Fabric. Applies the default topology when a scenario
 * has no `topology:` key, so scenarios written before the fabric existed
 * keep working.
 *
 * Default (documented in docs/fabric.md):
 *
 *   -[0000:00]-+-00.0  rc0 host bridge (8086:29c0, Q35-like, not whitelisted)
 *              \-01.0-[01-..]----00.0-[02-..]--+-00.0-[03]----00.0  <device 0>
 *                                              +-01.0-[04]----00.0  <device 1>
 *                                              ...
 *   one root complex (IOMMU off), one root port (Gen4 x16) with one switch
 *   `sw0`; one downstream port per scenario device (Gen4 x16, ACS capable:
 *   SV RR CR UF, nothing enabled); policy rfc-v1. Every pair of devices is
 *   then bus-addr at distance 4.
 *
 * Mirrors: nothing in the kernel; see pci_tree.ts for the bus scan.
 */
import type { InputKind } from './fix_hints.js';
import { Fabric } from './fabric.js';
import { buildPciTree, TopologyError } from './pci_tree.js';
import { formatTopologyIssues, TopologySchema, type TopologySpec } from './topology_schema.js';

export { Fabric, FabricError } from './fabric.js';
export type { MapTypeVerdict, FabricFlow, FabricRoute, P2pTest } from './fabric.js';
export { TopologyError } from './pci_tree.js';

/** The id given to the default host bridge: Intel Q35 DRAM controller, as QEMU emulates it. */
const DEFAULT_HOST_BRIDGE_ID = '8086:29c0';

export function defaultTopology(deviceNames: string[]): TopologySpec {
  return TopologySchema.parse({
    policy: 'rfc-v1',
    rootComplexes: [
      {
        name: 'rc0',
        id: DEFAULT_HOST_BRIDGE_ID,
        iommu: false,
        ports: [
          {
            slot: '01.0',
            link: { gen: 4, width: 16 },
            ...(deviceNames.length
              ? {
                  switch: {
                    name: 'sw0',
                    ports: deviceNames.map((d, i) => ({
                      slot: `${i.toString(16).padStart(2, '0')}.0`,
                      link: { gen: 4, width: 16 },
                      endpoint: { device: d },
                    })),
                  },
                }
              : {}),
          },
        ],
      },
    ],
  });
}

/** Validate a raw `topology:` value; throws TopologyError naming the bad key. */
export function parseTopology(raw: unknown): TopologySpec {
  const r = TopologySchema.safeParse(raw);
  if (!r.success) throw new TopologyError(formatTopologyIssues(r.error));
  return r.data;
}

/**
 * Build the fabric of a scenario. `spec` undefined → default topology.
 * `deviceNames`: every scenario device must be placed exactly once.
 * `seed`: the scenario seed (p2pmemFind tie-breaks).
 * Throws TopologyError with a message naming the key/device.
 */
export function buildFabric(spec: TopologySpec | undefined, deviceNames: string[], seed: number): Fabric {
  const s = spec ?? defaultTopology(deviceNames);
  return new Fabric(buildPciTree(s, deviceNames), seed);
}

/** Same, for an imported machine (lspci): no scenario devices to check. */
export function buildFabricUnchecked(spec: TopologySpec, seed = 0, inputKind: InputKind = 'scenario'): Fabric {
  return new Fabric(buildPciTree(spec, null, inputKind), seed);
}
