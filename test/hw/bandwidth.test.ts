// Link rates and the max-min fair flow model against hand-computed cases.
import t from 'tap';
import { maxMinRates, simulateFlows } from '../../src/hw/bandwidth.js';
import { laneBytesPerSec, linkBytesPerSec } from '../../src/hw/pcie_link.js';
import { buildFabric, parseTopology } from '../../src/hw/topology.js';

const G3X16 = (8e9 * 128) / 130 / 8 * 16; // 15.753846 GB/s

t.test('per-lane rates with encoding overhead', async (t) => {
  t.equal(laneBytesPerSec(1), 250e6, 'Gen1 8b/10b');
  t.equal(laneBytesPerSec(2), 500e6, 'Gen2 8b/10b');
  t.equal(Math.round(laneBytesPerSec(3)), 984615385, 'Gen3 128b/130b');
  t.equal(Math.round(laneBytesPerSec(4)), 1969230769);
  t.equal(Math.round(laneBytesPerSec(5)), 3938461538);
  t.equal(laneBytesPerSec(6), (64e9 * 242) / 256 / 8, 'Gen6 FLIT 242/256');
  t.ok(Math.abs(linkBytesPerSec(3, 16) - G3X16) < 1e-3);
  t.throws(() => laneBytesPerSec(7), RangeError);
});

t.test('maxMinRates: textbook case', async (t) => {
  // links L1 (cap 10) and L2 (cap 4); f1 on L1+L2, f2 on L1, f3 on L2
  const res = new Map([['L1', { id: 'L1', capacity: 10 }], ['L2', { id: 'L2', capacity: 4 }]]);
  const r = maxMinRates(res, [
    { id: 'f1', hops: [{ res: 'L1', weight: 1 }, { res: 'L2', weight: 1 }] },
    { id: 'f2', hops: [{ res: 'L1', weight: 1 }] },
    { id: 'f3', hops: [{ res: 'L2', weight: 1 }] },
  ]);
  t.same([r.get('f1'), r.get('f2'), r.get('f3')], [2, 8, 2]);
  const capped = maxMinRates(res, [{ id: 'a', hops: [{ res: 'L1', weight: 1 }], cap: 3 }, { id: 'b', hops: [{ res: 'L1', weight: 1 }] }]);
  t.same([capped.get('a'), capped.get('b')], [3, 7]);
});

const rcSwitch = (extra: Record<string, unknown> = {}) =>
  parseTopology({
    policy: 'iommu',
    rootComplexes: [
      {
        id: '8086:2020',
        ...extra,
        ports: [
          { link: { gen: 3, width: 16 }, switch: { ports: [{ link: { gen: 3, width: 16 }, endpoint: { device: 'a' } }, { link: { gen: 3, width: 16 }, endpoint: { device: 'b' } }] } },
          { link: { gen: 3, width: 16 }, endpoint: { device: 'c' } },
        ],
      },
    ],
  });

t.test('one flow: bytes / link rate', async (t) => {
  const f = buildFabric(rcSwitch(), ['a', 'b', 'c'], 1);
  const r = f.modelFlows([{ id: 'x', src: 'a', dst: 'b', bytes: 1e9 }]);
  t.equal(r.routes.x.via, 'p2p');
  t.equal(r.routes.x.map, 'bus-addr');
  t.same(r.routes.x.crossing, ['link:0000:02:00.0:up', 'link:0000:02:01.0:down'], 'up to the switch and down, not through the root port');
  t.ok(Math.abs(r.flows[0].end - 0.0634765625) < 1e-15, '1 GB over Gen3 x16 = 63.48 ms');
  const up = r.resources.find((x) => x.id === 'link:0000:02:00.0:up')!;
  t.ok(Math.abs(up.utilisation - 1) < 1e-9);
  t.equal(r.resources.find((x) => x.id === 'link:0000:00:01.0:up')!.bytes, 0, 'root port link untouched');
});

t.test('two flows sharing an uplink: max-min fair, then the survivor speeds up', async (t) => {
  const f = buildFabric(rcSwitch(), ['a', 'b', 'c'], 1);
  // a and b both write to system RAM: they share the root port's uplink.
  const r = f.modelFlows([
    { id: 'a', src: 'a', dst: 'ram', bytes: 1e9 },
    { id: 'b', src: 'b', dst: 'ram', bytes: 2e9 },
  ]);
  const [ea, eb] = r.flows.map((x) => x.end);
  t.ok(Math.abs(ea - (2 * 1e9) / G3X16) < 1e-12, 'a at half rate until done');
  t.ok(Math.abs(eb - (ea + 1e9 / G3X16)) < 1e-12, 'b: 1 GB left at full rate');
  t.ok(Math.abs(r.resources.find((x) => x.id === 'link:0000:00:01.0:up')!.utilisation - 1) < 1e-9);
  // staggered start: b starts when a is half done
  const s = f.modelFlows([
    { id: 'a', src: 'a', dst: 'ram', bytes: 1e9, start: 0 },
    { id: 'b', src: 'b', dst: 'ram', bytes: 0.5e9, start: 0.5e9 / G3X16 },
  ]);
  t.ok(Math.abs(s.flows[0].end - 1.5e9 / G3X16) < 1e-12);
  t.ok(Math.abs(s.flows[1].end - 1.5e9 / G3X16) < 1e-12);
});

t.test('bounce crosses the root complex twice and system RAM twice', async (t) => {
  const f = buildFabric(rcSwitch({ fabricGBps: 10, memGBps: 100 }), ['a', 'b', 'c'], 1);
  const r = f.modelFlows([{ id: 'x', src: 'a', dst: 'c', bytes: 1e9, via: 'bounce' }]);
  t.equal(r.routes.x.via, 'bounce');
  t.same(r.routes.x.hops.find((h) => h.res === 'rc:rc0'), { res: 'rc:rc0', weight: 2 });
  t.same(r.routes.x.hops.find((h) => h.res === 'mem:rc0'), { res: 'mem:rc0', weight: 2 });
  t.equal(r.flows[0].end, 0.2, '10 GB/s fabric crossed twice → 5 GB/s');
  const rcUse = r.resources.find((x) => x.id === 'rc:rc0')!;
  t.equal(rcUse.bytes, 2e9);
  t.equal(rcUse.utilisation, 1);
});

t.test('through the host bridge: P2P efficiency caps the flow', async (t) => {
  const f = buildFabric(rcSwitch({ p2pEfficiency: 0.75 }), ['a', 'b', 'c'], 1);
  const r = f.modelFlows([{ id: 'x', src: 'a', dst: 'c', bytes: 1e9 }]);
  t.equal(r.routes.x.map, 'thru-host-bridge');
  t.ok(Math.abs(r.flows[0].end - 1e9 / (0.75 * G3X16)) < 1e-12);
  t.throws(() => buildFabric(parseTopology({ rootComplexes: [{ ports: [{ endpoint: { device: 'a' } }, { endpoint: { device: 'b' } }] }] }), ['a', 'b'], 1).route('a', 'b', 'p2p'), {
    name: 'FabricError',
    message: /no P2P route/,
  });
});

t.test('across sockets: interconnect is a resource', async (t) => {
  const f = buildFabric(
    parseTopology({ policy: 'iommu', interconnectGBps: 4, rootComplexes: [{ id: '8086:2020', ports: [{ endpoint: { device: 'a' } }] }, { id: '8086:2020', ports: [{ endpoint: { device: 'b' } }] }] }),
    ['a', 'b'],
    1,
  );
  const r = f.modelFlows([{ id: 'x', src: 'a', dst: 'b', bytes: 4e9 }]);
  t.ok(r.routes.x.crossing.includes('xlink:rc0->rc1'));
  t.equal(r.flows[0].end, 1);
});

t.test('simulateFlows validates input', async (t) => {
  t.throws(() => simulateFlows([], [{ id: 'a', bytes: 1, start: 0, hops: [{ res: 'nope', weight: 1 }] }]), /unknown resource nope/);
  t.throws(() => simulateFlows([], [{ id: 'a', bytes: 1, start: 0, hops: [] }, { id: 'a', bytes: 1, start: 0, hops: [] }]), /used twice/);
  const z = simulateFlows([{ id: 'L', capacity: 1 }], [{ id: 'z', bytes: 0, start: 2, hops: [{ res: 'L', weight: 1 }] }]);
  t.equal(z.flows[0].end, 2);
});
