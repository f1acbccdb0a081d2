// `peervma topo --format dot|svg`: the tree, switch boxes, ACS redirect ports, IOMMU
// group badges and one P2P arc per pair coloured by the fabric's verdict.
import t from 'tap';
import { runTopo } from '../../src/cli/topo.js';

const root = new URL('../../', import.meta.url).pathname;
const sc = (n: string) => `${root}scenarios/${n}`;
const all = (s: string, re: RegExp) => [...s.matchAll(re)].map((m) => m[1]);

t.test('svg: every function a node, one arc per pair with the matrix verdict, the matrix and legend', async (t) => {
  const svg = runTopo(sc('topo-dual-rc.yaml'), { format: 'svg' });
  t.match(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
  t.match(svg, /<\/svg>$/);
  const json = JSON.parse(runTopo(sc('topo-dual-rc.yaml'), { json: true })) as { functions: { bdf: string; type: string }[]; matrix: { provider: string; client: string; map: string }[] };
  const fns = json.functions.filter((f) => f.type !== 'host-bridge').map((f) => f.bdf);
  t.same(all(svg, /<g class="node" data-id="([0-9a-f:.]+)"/g).sort(), fns.sort(), 'one node per PCI function');
  t.same(all(svg, /<g class="node" data-id="(rc:[^"]+)"/g), ['rc:socket0', 'rc:socket1'], 'one node per root complex');
  t.match(svg, /switch plx0/);
  const arcs = all(svg, /<path class="p2p ([a-z-]+)"/g);
  t.equal(arcs.length, 10, '5 endpoints: 10 pairs');
  t.equal(arcs.filter((v) => v === 'bus-addr').length, 3, 'gpu0, gpu1, nvme0 below plx0 talk by bus address');
  t.equal(arcs.filter((v) => v === 'thru-host-bridge').length, 7, 'the rest through the host bridge');
  t.equal(all(svg, /<rect class="cell"[^>]*fill="(#[0-9a-f]+)"/g).length, 25, '5 x 5 matrix');
  t.match(svg, /G0 \(IOMMU off: would-be\)/);
  t.notMatch(svg, /ACS redirect: P2P goes up/, 'no port redirects here');
});

t.test('svg: ACS redirect ports are marked, IOMMU on', async (t) => {
  const svg = runTopo(sc('camera-chain-iommu.yaml'), { format: 'svg' });
  t.equal(all(svg, /(ACS redirect: P2P goes up)/g).length, 3, 'root port and both downstream ports redirect');
  t.same(all(svg, /<path class="p2p ([a-z-]+)"/g), ['thru-host-bridge']);
  t.notMatch(svg, /would-be/, 'IOMMU on: real groups');
});

t.test('svg: a refused pair is a dashed red arc', async (t) => {
  const svg = runTopo(`${root}test/fixtures/scenarios/chain-two-rc.yaml`, { format: 'svg' });
  t.match(svg, /<path class="p2p not-supported"[^>]*stroke="#c62828"[^>]*stroke-dasharray/);
});

t.test('dot: nodes, a cluster per switch, tree edges and P2P edges that do not constrain', async (t) => {
  const dot = runTopo(sc('topo-dual-rc.yaml'), { format: 'dot' });
  t.match(dot, /^graph peervma_topology \{/);
  t.match(dot, /subgraph cluster_0 \{\n {4}label="switch plx0"/);
  t.equal(all(dot, /(constraint=false)/g).length, 10);
  t.match(dot, /"0000:03:00\.0" -- "0000:04:00\.0" \[constraint=false, color="#2e7d32"/, 'gpu0 -- gpu1 green');
  t.equal(all(dot, /("[^"]+" -- "[^"]+" \[color="#333333"\])/g).length, 12, 'tree edges: one per function below the root complexes (8 under socket0, 4 under socket1)');
  t.match(dot, /\}$/);
});

t.test('--format json is --json; text is the default', async (t) => {
  t.same(JSON.parse(runTopo(sc('topo-amd-zen.yaml'), { format: 'json' })), JSON.parse(runTopo(sc('topo-amd-zen.yaml'), { json: true })));
  t.equal(runTopo(sc('topo-amd-zen.yaml'), { format: 'text' }), runTopo(sc('topo-amd-zen.yaml'), {}));
});
