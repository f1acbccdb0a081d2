// The fabric under load (issue 15 item 4): N concurrent streams priced together. P2P under
// one switch scales with N; a bounce shares the switch uplink, the root complex and system
// RAM and stops scaling; streams across two root complexes share the socket interconnect.
// Figures are hand-computed from the link rates (Gen4 x16 = 31.51 GB/s) and the defaults
// (RC fabric 128 GB/s, RAM 80 GB/s, interconnect 41.6 GB/s).
import t from 'tap';
import { aggregateUnderLoad, gpuBox, neighbourStreams, p2pVsBounce } from '../../src/hw/fabric_load.js';
import { linkBytesPerSec } from '../../src/hw/pcie_link.js';

const G4X16 = linkBytesPerSec(4, 16);
const close = (a: number, b: number) => Math.abs(a - b) / b < 1e-9;

t.test('8 GPU-like devices under two switches (one top switch): p2p 8 links, bounce one root-port link', async (t) => {
  const { fabric, names } = gpuBox({ gpus: 8, fanout: 4 });
  const f = p2pVsBounce(fabric, names, 8);
  t.ok(close(f.p2p.aggregate, 8 * G4X16), `p2p ${(f.p2p.aggregate / 1e9).toFixed(1)} GB/s: every stream at its own link rate`);
  // Each bounce goes up the root port link once: 8 streams share 31.5 GB/s.
  t.ok(close(f.bounce.aggregate, G4X16), `bounce ${(f.bounce.aggregate / 1e9).toFixed(1)} GB/s`);
  t.match(f.bounce.bottleneck, /^link below 0000:00:01\.0/, 'the root port link is full');
  t.ok(f.ratio >= 3, `p2p / bounce = ${f.ratio.toFixed(2)} (issue 15: at least 3x)`);
});

t.test('two switches each on its own root port (DGX-1 style): the bounce fills system RAM', async (t) => {
  const { fabric, names } = gpuBox({ gpus: 8, fanout: 4, generate: { topSwitch: false } });
  const f = p2pVsBounce(fabric, names, 8);
  t.ok(close(f.p2p.aggregate, 8 * G4X16));
  // RAM: 80 GB/s, each bounce writes and reads it (weight 2): 40 GB/s for all eight.
  t.ok(close(f.bounce.aggregate, 40e9), `bounce ${(f.bounce.aggregate / 1e9).toFixed(1)} GB/s`);
  t.equal(f.bounce.bottleneck, 'system RAM of rc0');
  t.ok(f.ratio >= 3, `p2p / bounce = ${f.ratio.toFixed(2)}`);
});

t.test('N streams: p2p scales with N, the bounce is flat past its shared uplink', async (t) => {
  const { fabric, names } = gpuBox({ gpus: 8, fanout: 4 });
  const p2p = [1, 2, 4, 8].map((n) => p2pVsBounce(fabric, names, n));
  t.same(p2p.map((f) => Math.round(f.p2p.aggregate / G4X16)), [1, 2, 4, 8], 'p2p: N links');
  t.same(p2p.map((f) => Math.round(f.bounce.aggregate / G4X16)), [1, 1, 1, 1], 'bounce: one uplink');
});

t.test('a shared leaf uplink: four streams leaving one switch split it', async (t) => {
  const { fabric, names } = gpuBox({ gpus: 8, fanout: 4 });
  // gpu0..3 (leaf sw0) -> gpu4..7 (leaf sw1): bus-addr through the top switch, all four up sw0's uplink.
  const pairs = names.slice(0, 4).map((g, i): [string, string] => [g, names[i + 4]]);
  const f = aggregateUnderLoad(fabric, pairs, 'p2p');
  t.ok(close(f.aggregate, G4X16), `${(f.aggregate / 1e9).toFixed(1)} GB/s for four streams`);
  t.equal(f.utilisation, 1);
});

t.test('across two root complexes: thru the host bridges, the socket interconnect is shared', async (t) => {
  // One GPU per root port, four per socket; policy iommu so P2P may cross the host bridges.
  const { fabric, names } = gpuBox({ gpus: 8, fanout: 1, generate: { rootComplexes: 2, topSwitch: false, policy: 'iommu' } });
  t.equal(fabric.mapType('gpu4', 'gpu0').map, 'thru-host-bridge');
  const pairs = names.slice(0, 4).map((g, i): [string, string] => [g, names[i + 4]]);
  const f = aggregateUnderLoad(fabric, pairs, 'p2p');
  t.ok(close(f.aggregate, 41.6e9), `${(f.aggregate / 1e9).toFixed(1)} GB/s: the interconnect's 41.6`);
  t.equal(f.bottleneck, 'interconnect rc0 → rc1');
});

t.test('neighbourStreams pairs each GPU with the other on its slot pair', async (t) => {
  t.same(neighbourStreams(['a', 'b', 'c', 'd'], 3), [['a', 'b'], ['b', 'a'], ['c', 'd']]);
});
