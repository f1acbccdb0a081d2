// `peervma topo` text fits the terminal: every shipped scenario and every
// lspci capture among the fixtures, the whole report and --explain of its
// first two devices, at $COLUMNS 100 (the default), and the report at 60
// (the narrowest we lay out for: tables turn into blocks, the matrix splits
// by client).
// The lspci tree is exempt below 100 columns: its lines are drawn, not wrapped.
import t from 'tap';
import { readdirSync } from 'node:fs';
import { runTopo, topoFabric, type TopoFlags } from '../../src/cli/topo.js';

const root = new URL('../../', import.meta.url).pathname;
const inputs: [string, string | undefined, TopoFlags][] = [
  // Paths as a user in the project directory types them (the report's title line is the path).
  ...readdirSync(`${root}scenarios`).filter((f) => f.endsWith('.yaml')).map((f): [string, string | undefined, TopoFlags] => [f, `scenarios/${f}`, {}]),
  ...readdirSync(`${root}test/fixtures/lspci`).filter((f) => /\.tv(nn)?\.txt$/.test(f) && !f.startsWith('malformed')).map((f): [string, string | undefined, TopoFlags] => [f, undefined, { lspci: `test/fixtures/lspci/${f}` }]),
];

const tooWide = (text: string, cols: number, skipTree: boolean) => {
  let inTree = false;
  return text.split('\n').filter((l) => {
    if (l.startsWith('## ')) inTree = l.startsWith('## PCI tree');
    return !(skipTree && inTree) && [...l].length > cols;
  });
};

for (const cols of [100, 60]) {
  t.test(`every topo text fits ${cols} columns`, async (t) => {
    for (const [name, scenario, flags] of inputs) {
      let out: string;
      try {
        out = runTopo(scenario, flags, cols);
      } catch (e) {
        t.match(e, { name: 'LspciParseError' }, `${name}: refused as bad input (tested in test/hw)`);
        continue;
      }
      t.same(tooWide(out, cols, cols < 100), [], `${name}: report`);
      const { fabric } = topoFabric(scenario, flags);
      const devs = fabric.endpoints();
      // --explain is free text wrapped one way at any width: checked at 100 only (keeps the file fast).
      if (devs.length < 2 || cols < 100) continue;
      const explain = runTopo(scenario, { ...flags, explain: [fabric.nameOf(devs[0]), fabric.nameOf(devs[1])] }, cols);
      t.same(tooWide(explain, cols, false), [], `${name}: --explain`);
    }
  });
}

t.test('a tree whose lspci drawing is too wide prints as an outline, every function on it', async (t) => {
  const f = 'scenarios/camera-farm.yaml';
  const drawn = runTopo(f, {}, 200);
  const outline = runTopo(f, {}, 100);
  t.match(drawn, /\n## PCI tree \(lspci -tv\)\n/, '200 columns: the drawing');
  t.match(outline, /\n## PCI tree \(outline: lspci -tv would be wider than 100 columns\)\n\nrc0 \[0000:00\] 8086:2020\n {2}0000:00:00\.0 rc0 host bridge/, '100 columns: the outline');
  t.match(outline, /\n {6}0000:02:00\.0 \[03-08\] switch downstream port \(plx0\)\n {8}0000:03:00\.0 \[04-08\] switch upstream port \(sw0\)\n/, 'two spaces deeper per bus');
  const section = (s: string) => s.slice(s.indexOf('## PCI tree'), s.indexOf('## Root complexes'));
  const { fabric } = topoFabric(f, {});
  for (const d of fabric.tree.devs) t.ok(section(outline).includes(d.bdf), `${d.bdf} in the outline`);
});

t.test('the narrow layout keeps every cell: ports as blocks, the matrix split by client', async (t) => {
  const f = 'scenarios/topo-dual-rc.yaml';
  const wide = runTopo(f, {}, 100);
  const narrow = runTopo(f, {}, 60);
  t.match(wide, /\nfunction +type +link below +ACSCap +ACSCtl\n/, '100 columns: the ports table');
  t.match(narrow, /\n0000:02:10\.0 switch downstream port \(plx0\)\n {2}link below Gen3 x4 \(3\.94 GB\/s\); ACSCap SV RR CR UF;/, '60 columns: a block per port');
  t.match(narrow, /\nclients 1-2 of 5:\n/, 'the matrix in parts');
  const cells = (s: string) => (s.slice(s.indexOf('provider \\ client')).match(/bus-addr \d|host-bridge \d|no \((kernel|policy)\)/g) ?? []).length;
  t.equal(cells(narrow), cells(wide), 'as many matrix cells either way');
  t.equal(cells(wide), 25, '5 x 5 cells');
});
