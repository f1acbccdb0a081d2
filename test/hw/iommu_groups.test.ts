// IOMMU groups from ACS isolation (pci_device_group / REQ_ACS_FLAGS).
import t from 'tap';
import { buildFabric, parseTopology } from '../../src/hw/topology.js';

const members = (f: ReturnType<typeof buildFabric>) => f.iommuGroups().map((g) => g.members.map((m) => m.device ?? m.bdf));

t.test('IOMMU off, no ACS enabled: one would-be group for the whole sub-tree', async (t) => {
  const f = buildFabric(undefined, ['a', 'b'], 1);
  const g = f.iommuGroups();
  t.equal(g.length, 1);
  t.equal(g[0].iommu, false);
  t.equal(f.iommuGroupOf('a'), f.iommuGroupOf('b'));
  t.match(g[0].why.join('\n'), /0000:00:01\.0 ACSCtl lacks SV RR CR UF/);
});

t.test('IOMMU on: pci_enable_acs isolates every function below ACS ports', async (t) => {
  const spec = parseTopology({ rootComplexes: [{ iommu: true, ports: [{ switch: { ports: [{ endpoint: { device: 'a' } }, { endpoint: { device: 'b' } }] } }] }] });
  const f = buildFabric(spec, ['a', 'b'], 1);
  t.not(f.iommuGroupOf('a'), f.iommuGroupOf('b'));
  t.equal(f.iommuGroups().length, 6, 'root port, upstream port, 2 downstream ports, 2 endpoints');
  t.ok(f.iommuGroups().every((g) => g.members.length === 1 && g.iommu));
});

t.test('multifunction device without ACS: its functions share a group', async (t) => {
  const spec = parseTopology({ rootComplexes: [{ iommu: true, ports: [{ endpoint: { functions: [{ fn: 0, device: 'a' }, { fn: 1, device: 'b' }] } }, { endpoint: { device: 'c' } }] }] });
  const f = buildFabric(spec, ['a', 'b', 'c'], 1);
  t.equal(f.iommuGroupOf('a'), f.iommuGroupOf('b'));
  t.not(f.iommuGroupOf('a'), f.iommuGroupOf('c'));
  const g = f.iommuGroups()[f.iommuGroupOf('a')];
  t.match(g.why.join(' '), /multifunction device 0000:01:00 have no ACS/);
});

t.test('multifunction device whose functions have ACS: separate groups', async (t) => {
  const acs = { cap: ['SV', 'RR', 'CR', 'UF'], ctl: [] };
  const spec = parseTopology({ rootComplexes: [{ iommu: true, ports: [{ endpoint: { functions: [{ fn: 0, device: 'a', acs }, { fn: 1, device: 'b', acs }] } }] }] });
  const f = buildFabric(spec, ['a', 'b'], 1);
  t.not(f.iommuGroupOf('a'), f.iommuGroupOf('b'));
});

t.test('switch downstream ports without ACS: each endpoint joins the group of its port', async (t) => {
  const spec = parseTopology({ rootComplexes: [{ iommu: true, ports: [{ switch: { ports: [{ acs: false, endpoint: { device: 'a' } }, { acs: false, endpoint: { device: 'b' } }] } }] }] });
  const f = buildFabric(spec, ['a', 'b'], 1);
  const ga = f.iommuGroups()[f.iommuGroupOf('a')];
  t.same(ga.members.map((m) => m.device ?? m.bdf), ['0000:02:00.0', 'a']);
});

t.test('root port without ACS: everything below shares its group', async (t) => {
  const spec = parseTopology({ rootComplexes: [{ iommu: true, ports: [{ acs: false, switch: { ports: [{ endpoint: { device: 'a' } }, { endpoint: { device: 'b' } }] } }, { endpoint: { device: 'c' } }] }] });
  const f = buildFabric(spec, ['a', 'b', 'c'], 1);
  t.equal(f.iommuGroupOf('a'), f.iommuGroupOf('b'));
  t.not(f.iommuGroupOf('a'), f.iommuGroupOf('c'));
  t.equal(members(f)[f.iommuGroupOf('a')].length, 6);
});
