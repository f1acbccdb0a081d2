// lspci as people paste it (test/fixtures/lspci/, written after real bug-report and forum
// captures): each class of noise is skipped with a note naming the line, trees with lost
// indentation are rebuilt when that is unambiguous and refused with the recapture command
// when not, and nothing the capture shows is dropped.
import { readFileSync } from 'node:fs';
import t from 'tap';
import { importLspci, parseLspciTree } from '../../src/hw/lspci.js';
import { buildFabricUnchecked } from '../../src/hw/topology.js';
import { renderTree } from '../../src/hw/topo_report.js';

const fx = (n: string) => readFileSync(new URL(`../fixtures/lspci/${n}`, import.meta.url), 'utf8');
const load = (tree: string, vvv: string | null = null) => importLspci(fx(tree), vvv === null ? null : fx(vvv), {}, { tree, verbose: vvv ?? undefined });

t.test('a forum paste: prompt, uname, pcilib and cut marks are skipped with a note each', async (t) => {
  const imp = load('forum-paste.tvnn.txt', 'forum-paste.nnvvv.txt');
  const notes = imp.notes.join('\n');
  for (const [file, line, what] of [
    ['forum-paste.tvnn.txt', 1, 'a shell prompt line'],
    ['forum-paste.tvnn.txt', 2, 'a kernel version line'],
    ['forum-paste.tvnn.txt', 4, 'a pcilib warning'],
    ['forum-paste.tvnn.txt', 8, 'an abridgement marker'],
    ['forum-paste.tvnn.txt', 11, 'an abridgement marker'],
    ['forum-paste.tvnn.txt', 16, 'a shell prompt line'],
    ['forum-paste.nnvvv.txt', 1, 'a shell prompt line'],
    ['forum-paste.nnvvv.txt', 2, 'a kernel version line'],
    ['forum-paste.nnvvv.txt', 11, 'a pcilib warning'],
    ['forum-paste.nnvvv.txt', 31, 'an abridgement marker'],
  ] as const) {
    t.match(notes, `${file}:${line}: skipped ${what}`, `${file}:${line}`);
  }
  const f = buildFabricUnchecked(imp.spec);
  t.equal(f.tree.rcs[0].hostBridgeId, '8086:3e30');
  t.ok(f.tree.byBdf.get('0000:01:00.3'), 'the function after the cut is kept');
  t.equal(f.tree.byBdf.get('0000:00:1b.0')!.link!.width, 4, 'the -vvv after the cut marker was read');
  t.equal(f.mapType('01:00.0', '02:00.0').map, 'not-supported');
});

t.test('a paste that lost its leading blanks, or had runs of blanks collapsed, is rebuilt exactly', async (t) => {
  const intact = renderTree(buildFabricUnchecked(load('server-skylake-plx.tvnn.txt').spec));
  for (const file of ['stripped-indent.tvnn.txt', 'collapsed-spaces.tvnn.txt']) {
    const imp = load(file);
    t.equal(renderTree(buildFabricUnchecked(imp.spec)), intact, file);
    t.match(imp.notes[0], `${file}:2: the indentation of the tree is not lspci's (lost in a paste?): the tree was rebuilt from its "+-"/"\\-" markers and [bus] brackets`);
  }
});

t.test('a grep-filtered paste that cannot be rebuilt unambiguously is refused with the recapture command', async (t) => {
  t.throws(() => load('grep-filtered.tvnn.txt'), {
    name: 'LspciParseError',
    message: /^grep-filtered\.tvnn\.txt:2: .*the indentation of this tree was lost and it cannot be rebuilt unambiguously: line 4: root bus \[0000:ae\] inside bus d7; recapture with `lspci -tvnn > tree\.txt` and pass that file unchanged/,
  });
  t.throws(() => parseLspciTree(fx('malformed.tv.txt'), 'malformed.tv.txt'), { message: /cannot be rebuilt unambiguously: line 13: the list of bus 00 is never closed by a "\\-" line/ });
});

t.test('a function beside a switch upstream port (its management endpoint) stays in tree, groups and matrix', async (t) => {
  const imp = load('switchtec-mgmt.tvnn.txt');
  const f = buildFabricUnchecked(imp.spec);
  const mgmt = f.tree.byBdf.get('0000:01:00.1')!;
  t.equal(mgmt.type, 'endpoint');
  t.equal(mgmt.id, '11f8:8536');
  t.equal(mgmt.parent!.bdf, '0000:00:01.0', 'on the root port\'s bus, beside the upstream port');
  t.equal(f.tree.byBdf.get('0000:01:00.0')!.type, 'upstream-port');
  t.ok(f.endpoints().some((d) => d.bdf === '0000:01:00.1'), 'in the matrix');
  t.ok(f.iommuGroupOf('01:00.1') >= 0, 'in an IOMMU group');
  t.equal(f.tree.byBdf.get('0000:01:00.0')!.multifunction, true, 'upstream port and endpoint form one multi-function device');
  t.notMatch(imp.notes.join('\n'), /treated as one switch upstream port|left out/);
  t.equal(f.mapType('03:00.0', '04:00.0').map, 'bus-addr', 'the GPUs below the switch still route through it');
});

t.test('an unnamed device ("[AMD] Device 14a4") is read as its id: the AMD Zen root complex is recognised', async (t) => {
  const imp = load('amd-genoa-unnamed.tv.txt');
  t.equal(imp.spec.cpuRoutesP2p, true);
  t.match(imp.notes.join('\n'), /recognised an AMD Zen root complex \(AMD Family 19h \(Model 10h\) Root Complex \(Genoa\) \(1022:14a4\)\)/);
  const f = buildFabricUnchecked(imp.spec);
  t.same(f.tree.rcs.map((r) => r.hostBridgeId), ['1022:14a4', '1022:14a4']);
  t.equal(f.mapType('c1:00.0', '01:00.0').map, 'thru-host-bridge');
});

t.test('a plain `lspci` listing is rebuilt into a tree from the Bus: lines of -vvv, and refused without them', async (t) => {
  const plain = load('plain-desktop.nn.txt', 'desktop-intel.vvv.txt');
  t.match(plain.notes.join('\n'), /plain-desktop\.nn\.txt: no tree \(lspci -t\) given: the tree was rebuilt from the "Bus:" lines of the -vvv output/);
  const f = buildFabricUnchecked(plain.spec);
  const full = buildFabricUnchecked(load('desktop-intel.tv.txt', 'desktop-intel.vvv.txt').spec);
  for (const [a, b] of [['01:00.0', '02:00.0'], ['01:00.0', '01:00.1'], ['02:00.0', '04:00.0']]) {
    t.same(f.mapType(a, b), full.mapType(a, b), `${a} ${b}: the same verdict as from the tree`);
  }
  t.equal(f.tree.byBdf.get('0000:01:00.0')!.parent!.bdf, '0000:00:01.0');
  t.throws(() => load('plain-desktop.nn.txt'), { message: /^plain-desktop\.nn\.txt:1: this is a plain `lspci` listing, not a tree: capture `lspci -tvnn` for --lspci, or give `sudo lspci -nnvvv` output to --lspci-vvv as well/ });
});
