// Root buses grouped into CPU sockets by what the capture shows: the "NUMA node: N" lines of
// `lspci -vvv` (two-socket Xeon), else all root buses on one socket, stated as an assumption
// (single-socket EPYC with four root buses); --socket BUS=N states a root bus's socket.
// Only root buses of different sockets cross the socket interconnect, in the path and the bandwidth model.
import t from 'tap';
import { runTopo, topoFabric } from '../../src/cli/topo.js';

// Content checks on whole sentences: no wrapping (test/cli/topo_width.test.ts checks the 100-column layout).
const UNWRAPPED = 10_000;
import { importLspci } from '../../src/hw/lspci.js';
import { readFileSync } from 'node:fs';

const root = new URL('../../', import.meta.url).pathname;
const fx = (n: string) => `${root}test/fixtures/lspci/${n}`;
const XEON = { lspci: fx('xeon-2s-numa.tvnn.txt'), lspciVvv: fx('xeon-2s-numa.nnvvv.txt') };
const EPYC = { lspci: fx('epyc-milan-1s.tvnn.txt') };
const socketsOf = (flags: Parameters<typeof topoFabric>[1]) =>
  Object.fromEntries(topoFabric(undefined, flags).fabric.tree.rcs.map((rc) => [rc.name.slice(-2), rc.socket]));
const pathOf = (flags: Parameters<typeof runTopo>[1], a: string, b: string) => JSON.parse(runTopo(undefined, { ...flags, explain: [a, b], json: true }));

t.test('two-socket Xeon: root buses grouped by their NUMA node', async (t) => {
  const imp = importLspci(readFileSync(XEON.lspci, 'utf8'), readFileSync(XEON.lspciVvv, 'utf8'));
  t.same(imp.spec.rootComplexes.map((r) => [r.bus, r.socket]), [[0x00, 0], [0x3a, 0], [0x5d, 0], [0x85, 1], [0xae, 1], [0xd7, 1]]);
  t.same(imp.sockets.assumed, [], 'every root bus shows its node');
  t.same(socketsOf(XEON), { '00': 0, '3a': 0, '5d': 0, '85': 1, ae: 1, d7: 1 });
  t.match(runTopo(undefined, XEON), /pci0000:5d \[0000:5d\] 8086:2030: IOMMU off, P2P efficiency 1, socket 0\n/);
});

t.test('two-socket Xeon: the socket interconnect only between sockets', async (t) => {
  const same = pathOf(XEON, '3b:00.0', '5e:00.0');
  t.same(same.path.slice(2, 4), ['host bridge pci0000:3a', 'host bridge pci0000:5d (same socket)']);
  t.notOk(same.path.includes('socket interconnect'), 'root buses 3a and 5d are both on node 0');
  t.notMatch(same.assumptions.join('\n'), /socket/, 'nothing assumed about sockets on one node');
  const cross = pathOf(XEON, '3b:00.0', 'af:00.0');
  t.same(cross.path.slice(2, 5), ['host bridge pci0000:3a', 'socket interconnect', 'host bridge pci0000:ae']);
  t.match(cross.assumptions, [/^sockets taken from NUMA nodes \(pci0000:3a on node 0, pci0000:ae on node 1\): with sub-NUMA clustering .* \(state it with --socket 3a=N,ae=N\)/]);
  const { fabric } = topoFabric(undefined, XEON);
  const flows = (src: string, dst: string) => fabric.modelFlows([{ id: 'x', src, dst, bytes: 1e9 }]).routes.x.crossing;
  t.same(flows('5e:00.0', '3b:00.0'), ['link:0000:5d:00.0:up', 'rc:pci0000:5d', 'rc:pci0000:3a', 'link:0000:3a:00.0:down']);
  t.ok(flows('af:00.0', '3b:00.0').includes('xlink:pci0000:ae->pci0000:3a'));
  t.notOk(fabric.bandwidthResources().some((r) => r.id === 'xlink:pci0000:3a->pci0000:5d'), 'no interconnect resource inside a socket');
  t.match(runTopo(undefined, XEON), /\n- sockets taken from NUMA nodes 0, 1: with sub-NUMA clustering/);
});

t.test('single-socket EPYC without NUMA lines: one socket, stated as an assumption', async (t) => {
  t.same(socketsOf(EPYC), { '00': 0, '20': 0, '40': 0, '60': 0 });
  const v = pathOf(EPYC, '01:00.0', '41:00.0');
  t.equal(v.map, 'thru-host-bridge', 'Zen routes P2P between its root complexes');
  t.same(v.path.slice(2, 4), ['host bridge pci0000:00', 'host bridge pci0000:40 (same socket)']);
  t.notOk(v.path.includes('socket interconnect'));
  t.ok(
    v.assumptions.includes('socket of pci0000:00 and pci0000:40 not in the capture (`sudo lspci -nnvvv` prints "NUMA node: N" where the firmware gives one): assumed on one socket, so no socket interconnect between them (state it with --socket 00=N,40=N)'),
  );
  t.match(runTopo(undefined, EPYC, UNWRAPPED), /\n- sockets not in the capture .*: all 4 root buses assumed on one socket, so no socket interconnect between them \(state each with --socket BUS=N, e\.g\. --socket 60=1\)/);
  const same = pathOf(EPYC, '21:00.0', '22:00.0');
  t.notMatch(same.assumptions.join('\n'), /socket/, 'one root complex: nothing about sockets to assume');
});

t.test('--socket states a root bus\'s socket', async (t) => {
  const flags = { ...EPYC, socket: '40=1' };
  t.same(socketsOf(flags), { '00': 0, '20': 0, '40': 1, '60': 0 });
  const v = pathOf(flags, '01:00.0', '41:00.0');
  t.same(v.path.slice(2, 5), ['host bridge pci0000:00', 'socket interconnect', 'host bridge pci0000:40']);
  t.match(v.assumptions.join('\n'), /socket of pci0000:00 not in the capture .*: assumed on socket 0 \(state it with --socket 00=N\)/, 'only the root bus not stated stays assumed');
  const all = pathOf({ ...EPYC, socket: '00=0,0000:40=0' }, '01:00.0', '41:00.0');
  t.notMatch(all.assumptions.join('\n'), /socket/, 'both stated: nothing assumed');
  t.notOk(all.path.includes('socket interconnect'));
  // Sub-NUMA clustering: the flag overrides the node and drops the NUMA caveat.
  const snc = pathOf({ ...XEON, socket: 'ae=0' }, '3b:00.0', 'af:00.0');
  t.notOk(snc.path.includes('socket interconnect'));
  t.notMatch(snc.assumptions.join('\n'), /NUMA/);
  t.throws(() => runTopo(undefined, { ...EPYC, socket: '40' }), /--socket: expected BUS=N with N 0…255 \(e\.g\. 80=1\), got '40'/);
  t.throws(() => runTopo(undefined, { ...EPYC, socket: '40=256' }), /--socket: expected BUS=N/);
  t.throws(() => runTopo(undefined, { ...EPYC, socket: '80=1' }), /--socket: no root bus 0000:80 in the capture \(root buses: 00, 20, 40, 60\), in '80=1'/);
  t.throws(() => runTopo(`${root}scenarios/topo-dual-rc.yaml`, { socket: '00=0' }), /--socket apply to --lspci captures/);
});

t.test('a scenario keeps one socket per root complex unless it states one', async (t) => {
  const { fabric } = topoFabric(`${root}scenarios/topo-dual-rc.yaml`, {});
  const [a, b] = fabric.tree.rcs;
  t.not(a.socket, b.socket);
  t.ok(fabric.bandwidthResources().some((r) => r.id === `xlink:${a.name}->${b.name}`));
});
