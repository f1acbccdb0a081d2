// Topology cases: 2019 upstream_bridge_distance(), current calc_map_type_and_dist(), policy modes.
import t from 'tap';
import { buildFabric, parseTopology } from '../../src/hw/topology.js';
import type { PortSpec } from '../../src/hw/topology_schema.js';

type Acs = PortSpec['acs'];
const ep = (device: string, acs?: Acs): PortSpec => ({ endpoint: { device }, ...(acs !== undefined ? { acs } : {}) });
const sw = (ports: PortSpec[], extra: Record<string, unknown> = {}): PortSpec => ({ switch: { ports, ...extra } });
const NOT_WL = '8086:29c0';
const SKX = '8086:2020';
const HSW = '8086:2f00'; // REQ_SAME_HOST_BRIDGE
const RR: Acs = { cap: ['SV', 'RR', 'CR', 'UF'], ctl: ['RR', 'CR'] };

interface Case {
  name: string;
  topo: Record<string, unknown>;
  devices: string[];
  a: string; // provider
  b: string; // client
  d2019: number;
  kernel: 'bus-addr' | 'thru-host-bridge' | 'not-supported';
  policy: 'bus-addr' | 'thru-host-bridge' | 'not-supported';
  distance: number;
  reason: RegExp[];
}
const rc = (ports: PortSpec[], extra: Record<string, unknown> = {}) => ({ id: NOT_WL, ports, ...extra });

const cases: Case[] = [
  {
    name: 'same switch, no ACS redirect',
    topo: { rootComplexes: [rc([sw([ep('a'), ep('b')])])] },
    devices: ['a', 'b'], a: 'a', b: 'b', d2019: 4, kernel: 'bus-addr', policy: 'bus-addr', distance: 4,
    reason: [/share upstream bridge 0000:01:00\.0/, /distance 4/],
  },
  {
    name: 'same function',
    topo: { rootComplexes: [rc([sw([ep('a'), ep('b')])])] },
    devices: ['a', 'b'], a: 'a', b: 'a', d2019: 0, kernel: 'bus-addr', policy: 'bus-addr', distance: 0,
    reason: [/same function/],
  },
  {
    name: 'two functions of one multifunction device',
    topo: { rootComplexes: [rc([{ endpoint: { functions: [{ fn: 0, device: 'a' }, { fn: 1, device: 'b' }] } }])] },
    devices: ['a', 'b'], a: 'a', b: 'b', d2019: 2, kernel: 'bus-addr', policy: 'bus-addr', distance: 2,
    reason: [/share upstream bridge 0000:00:01\.0 \(root port\)/],
  },
  {
    name: 'multifunction device, redirect on the common port, not whitelisted',
    topo: { rootComplexes: [rc([{ acs: RR, endpoint: { functions: [{ fn: 0, device: 'a' }, { fn: 1, device: 'b' }] } }])] },
    devices: ['a', 'b'], a: 'a', b: 'b', d2019: -2, kernel: 'not-supported', policy: 'not-supported', distance: 2,
    reason: [/ACS redirect is set/, /pci=disable_acs_redir=0000:00:01\.0(?!;)/, /not in the P2PDMA whitelist/],
  },
  {
    name: 'redirect on one switch downstream port, not whitelisted',
    topo: { policy: 'iommu', rootComplexes: [rc([sw([ep('a', RR), ep('b')])])] },
    devices: ['a', 'b'], a: 'a', b: 'b', d2019: -2, kernel: 'not-supported', policy: 'not-supported', distance: 4,
    reason: [/0000:02:00\.0 \(switch downstream port.*\) \[ACSCtl RR CR, set before the kernel touched ACS/, /pci=disable_acs_redir=0000:02:00\.0 /],
  },
  {
    name: 'redirect (EC) on the common switch upstream port, whitelisted host bridge',
    topo: { policy: 'iommu', rootComplexes: [{ id: SKX, ports: [sw([ep('a'), ep('b')], { upstreamAcs: { cap: ['EC'], ctl: ['EC'] } })] }] },
    devices: ['a', 'b'], a: 'a', b: 'b', d2019: -2, kernel: 'thru-host-bridge', policy: 'thru-host-bridge', distance: 4,
    reason: [/0000:01:00\.0 \(switch upstream port.*\[ACSCtl EC/, /Skylake-E/],
  },
  {
    name: 'two root ports of one whitelisted host bridge',
    topo: { policy: 'iommu', rootComplexes: [{ id: SKX, ports: [ep('a'), ep('b')] }] },
    devices: ['a', 'b'], a: 'a', b: 'b', d2019: -1, kernel: 'thru-host-bridge', policy: 'thru-host-bridge', distance: 4,
    reason: [/do not share an upstream bridge/, /8086:2020 \(Intel Skylake-E DMI3 registers\) is on the P2PDMA whitelist/],
  },
  {
    name: 'two root ports, host bridge not whitelisted',
    topo: { policy: 'iommu', rootComplexes: [rc([ep('a'), ep('b')])] },
    devices: ['a', 'b'], a: 'a', b: 'b', d2019: -1, kernel: 'not-supported', policy: 'not-supported', distance: 4,
    reason: [/8086:29c0 is not in the P2PDMA whitelist/, /place both devices below one PCIe switch/],
  },
  {
    name: 'same-host-bridge-only entry, both on that host bridge',
    topo: { policy: 'iommu', rootComplexes: [{ id: HSW, ports: [ep('a'), ep('b')] }] },
    devices: ['a', 'b'], a: 'a', b: 'b', d2019: -1, kernel: 'thru-host-bridge', policy: 'thru-host-bridge', distance: 4,
    reason: [/Xeon E7 v3/],
  },
  {
    name: 'same-host-bridge-only entries across two host bridges',
    topo: { policy: 'iommu', rootComplexes: [{ id: HSW, ports: [ep('a')] }, { id: HSW, ports: [ep('b')] }] },
    devices: ['a', 'b'], a: 'a', b: 'b', d2019: -1, kernel: 'not-supported', policy: 'not-supported', distance: 4,
    reason: [/different host bridges/, /REQ_SAME_HOST_BRIDGE/],
  },
  {
    name: 'two root complexes, both whitelisted (no flag)',
    topo: { policy: 'iommu', rootComplexes: [{ id: SKX, ports: [sw([ep('a')])] }, { id: SKX, ports: [ep('b')] }] },
    devices: ['a', 'b'], a: 'a', b: 'b', d2019: -1, kernel: 'thru-host-bridge', policy: 'thru-host-bridge', distance: 6,
    reason: [/is on rc0 .* and .* on rc1/],
  },
  {
    name: 'two root complexes, one not whitelisted',
    topo: { policy: 'iommu', rootComplexes: [{ id: SKX, ports: [ep('a')] }, { name: 'other', id: NOT_WL, ports: [ep('b')] }] },
    devices: ['a', 'b'], a: 'a', b: 'b', d2019: -1, kernel: 'not-supported', policy: 'not-supported', distance: 4,
    reason: [/host bridge other \[0000:02\] 8086:29c0 is not in the P2PDMA whitelist/],
  },
  {
    name: 'IOMMU on, same switch, whitelisted: redirect set by pci_enable_acs, through the host bridge',
    topo: { policy: 'iommu', rootComplexes: [{ id: SKX, iommu: true, ports: [sw([ep('a'), ep('b')])] }] },
    devices: ['a', 'b'], a: 'a', b: 'b', d2019: -2, kernel: 'thru-host-bridge', policy: 'thru-host-bridge', distance: 4,
    reason: [/set by pci_enable_acs\(\) because the IOMMU of rc0 is on/, /translates the peer addresses/],
  },
  {
    name: 'IOMMU on, same switch, not whitelisted',
    topo: { policy: 'iommu', rootComplexes: [rc([sw([ep('a'), ep('b')])], { iommu: true })] },
    devices: ['a', 'b'], a: 'a', b: 'b', d2019: -2, kernel: 'not-supported', policy: 'not-supported', distance: 4,
    reason: [/pci=disable_acs_redir=0000:02:00\.0;0000:02:01\.0/, /iommu: false/],
  },
  {
    name: 'IOMMU on, rfc-v1 refuses what the kernel allows',
    topo: { policy: 'rfc-v1', rootComplexes: [{ id: SKX, iommu: true, ports: [sw([ep('a'), ep('b')])] }] },
    devices: ['a', 'b'], a: 'a', b: 'b', d2019: -2, kernel: 'thru-host-bridge', policy: 'not-supported', distance: 4,
    reason: [/policy rfc-v1/, /the IOMMU is on for rc0/, /topology\.policy: iommu/],
  },
  {
    name: 'IOMMU on, switch ports without ACS capability: nothing to redirect',
    topo: { policy: 'iommu', rootComplexes: [rc([sw([ep('a', false), ep('b', false)])], { iommu: true })] },
    devices: ['a', 'b'], a: 'a', b: 'b', d2019: 4, kernel: 'bus-addr', policy: 'bus-addr', distance: 4,
    reason: [/no ACS redirect/],
  },
  {
    name: 'IOMMU on, disable_acs_redir on both downstream ports',
    topo: { policy: 'iommu', disableAcsRedir: ['0000:02:00.0', '02:01.0'], rootComplexes: [rc([sw([ep('a'), ep('b')])], { iommu: true })] },
    devices: ['a', 'b'], a: 'a', b: 'b', d2019: 4, kernel: 'bus-addr', policy: 'bus-addr', distance: 4,
    reason: [/share upstream bridge/],
  },
  {
    name: 'CPU routes P2P (AMD Zen-like), two root ports, host bridge not whitelisted',
    topo: { policy: 'iommu', cpuRoutesP2p: true, rootComplexes: [{ id: '1022:1480', ports: [ep('a'), ep('b')] }] },
    devices: ['a', 'b'], a: 'a', b: 'b', d2019: -1, kernel: 'thru-host-bridge', policy: 'thru-host-bridge', distance: 4,
    reason: [/cpu_supports_p2pdma/],
  },
  {
    name: 'CPU routes P2P, but rfc-v1 requires one sub-tree',
    topo: { policy: 'rfc-v1', cpuRoutesP2p: true, rootComplexes: [{ id: '1022:1480', ports: [ep('a'), ep('b')] }] },
    devices: ['a', 'b'], a: 'a', b: 'b', d2019: -1, kernel: 'thru-host-bridge', policy: 'not-supported', distance: 4,
    reason: [/not in one PCIe sub-tree/],
  },
  {
    name: 'nested switches: distance counts every port',
    topo: { rootComplexes: [rc([sw([sw([ep('a')]), ep('b')])])] },
    devices: ['a', 'b'], a: 'a', b: 'b', d2019: 6, kernel: 'bus-addr', policy: 'bus-addr', distance: 6,
    reason: [/share upstream bridge 0000:01:00\.0/],
  },
];

t.test('topology table', async (t) => {
  t.ok(cases.length >= 15);
  for (const c of cases) {
    t.test(c.name, async (t) => {
      const f = buildFabric(parseTopology(c.topo), c.devices, 1);
      const v = f.mapType(c.a, c.b);
      t.equal(f.upstreamBridgeDistance(c.a, c.b), c.d2019, '2019 upstream_bridge_distance');
      t.equal(v.distance2019, c.d2019);
      t.equal(v.kernel?.map, c.kernel, 'current kernel map type');
      t.equal(v.map, c.policy, `policy ${f.policy} verdict`);
      t.equal(v.distance, c.distance, 'current distance');
      for (const re of c.reason) t.match(v.reason, re);
      t.match(v.reason, /^p2pdma: /);
      if (v.map === 'not-supported') t.match(v.reason, /Fix: /, 'a refusal suggests a fix');
      t.ok(v.path.length > 0);
      // symmetric in these topologies
      t.equal(f.mapType(c.b, c.a).map, v.map, 'symmetric');
    });
  }
});

t.test('verdicts are cached per (provider, client)', async (t) => {
  const f = buildFabric(undefined, ['a', 'b', 'c'], 1);
  const v1 = f.mapType('a', 'b');
  t.equal(f.cachedPairs, 1);
  t.equal(f.mapType('a', 'b'), v1, 'same object from the cache');
  f.mapType('b', 'a');
  t.equal(f.cachedPairs, 2);
});

t.test('unknown devices are not PCI devices', async (t) => {
  const f = buildFabric(undefined, ['a'], 1);
  const v = f.mapType('a', 'ghost');
  t.equal(v.map, 'not-supported');
  t.match(v.reason, /ghost cannot be used for peer-to-peer DMA as it is not a PCI device/);
  t.equal(f.deviceTestP2p('a', 'ghost').ok, false);
  t.equal(f.pciTestP2p('ghost', 'a').ok, false);
});

t.test('pciTestP2p (2019 rule) vs deviceTestP2p (policy mode)', async (t) => {
  const f = buildFabric(parseTopology({ policy: 'iommu', rootComplexes: [{ id: SKX, ports: [sw([ep('a'), ep('b')]), ep('c')] }] }), ['a', 'b', 'c'], 1);
  t.same([f.pciTestP2p('a', 'b').ok, f.pciTestP2p('a', 'b').distance], [true, 4]);
  t.same([f.pciTestP2p('a', 'c').ok, f.pciTestP2p('a', 'c').distance], [false, -1]);
  t.equal(f.deviceTestP2p('a', 'c').ok, true, 'iommu policy: through the whitelisted host bridge');
  const g = buildFabric(parseTopology({ policy: 'rfc-v1', rootComplexes: [{ id: SKX, ports: [sw([ep('a'), ep('b')]), ep('c')] }] }), ['a', 'b', 'c'], 1);
  t.equal(g.deviceTestP2p('a', 'c').ok, false, 'rfc-v1: same sub-tree only');
  const h = buildFabric(parseTopology({ rootComplexes: [rc([sw([ep('a', RR), ep('b')])])] }), ['a', 'b'], 1);
  const r = h.pciTestP2p('a', 'b');
  t.equal(r.distance, -2);
  t.match(r.reason, /pci=disable_acs_redir=0000:02:00\.0/);
  t.match(r.reason, /^p2pdma: b \(0000:04:00\.0\): ACS redirect is set between the client and provider a \(0000:03:00\.0\) .*; peer TLPs are forced up to the root complex rc0\. Fix: to disable ACS redirect/, 'the redirect sentence, then the fix');
  t.notMatch(r.reason, /whitelist|host bridge pci/, 'nothing of the host-bridge verdict the 2019 rule never weighs');
});

t.test('p2pmemFind: closest provider, ties broken by the seed', async (t) => {
  const topo = parseTopology({ policy: 'iommu', rootComplexes: [{ id: SKX, ports: [sw([ep('p0'), ep('p1'), ep('c0'), ep('c1')]), sw([ep('far')])] }] });
  const devs = ['p0', 'p1', 'c0', 'c1', 'far'];
  const f = buildFabric(topo, devs, 1);
  const r = f.p2pmemFind(['c0', 'c1'], ['p0', 'p1', 'far']);
  t.same(r.candidates.sort(), ['p0', 'p1']);
  t.equal(r.distance, 8);
  t.match(r.reason, /tie between/);
  const picks = new Set<string>();
  for (let seed = 0; seed < 16; seed++) {
    const a = buildFabric(topo, devs, seed).p2pmemFind(['c0', 'c1'], ['p0', 'p1', 'far']).provider!;
    const b = buildFabric(topo, devs, seed).p2pmemFind(['c0', 'c1'], ['p0', 'p1', 'far']).provider!;
    t.equal(a, b, `seed ${seed} reproducible`);
    picks.add(a);
  }
  t.same([...picks].sort(), ['p0', 'p1'], 'different seeds pick both tied providers');
  t.equal(f.p2pmemFind(['c0'], ['c0', 'p0']).provider, 'c0', 'a client that is a provider is distance 0');
  const none = buildFabric(parseTopology({ rootComplexes: [rc([ep('x'), ep('y')])] }), ['x', 'y'], 1).p2pmemFind(['x'], ['y']);
  t.equal(none.provider, null);
});

t.test('iommuEnabledFor', async (t) => {
  const f = buildFabric(parseTopology({ rootComplexes: [{ iommu: true, ports: [ep('a')] }, { ports: [ep('b')] }] }), ['a', 'b'], 1);
  t.equal(f.iommuEnabledFor('a'), true);
  t.equal(f.iommuEnabledFor('b'), false);
});
