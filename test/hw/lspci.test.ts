// lspci -tv / -vvv parsing of the shipped fixtures, and verdicts on those machines.
import { readFileSync } from 'node:fs';
import t from 'tap';
import { importLspci, LspciParseError, parseLspciTree, parseLspciVerbose } from '../../src/hw/lspci.js';
import { buildFabricUnchecked } from '../../src/hw/topology.js';
import { renderTree } from '../../src/hw/topo_report.js';

const fx = (n: string) => readFileSync(new URL(`../fixtures/lspci/${n}`, import.meta.url), 'utf8');

t.test('desktop: tree, ids from -vvv, verdicts', async (t) => {
  const roots = parseLspciTree(fx('desktop-intel.tv.txt'));
  t.equal(roots.length, 1);
  t.equal(roots[0].functions.length, 16);
  const gpu = roots[0].functions.find((f) => f.dev === 1)!;
  t.same([gpu.secondary, gpu.children.length], [1, 4]);
  t.equal(gpu.children[0].name, 'NVIDIA Corporation TU104 [GeForce RTX 2080 SUPER]');
  const v = parseLspciVerbose(fx('desktop-intel.vvv.txt'));
  t.equal(v.get('0000:00:00.0')!.id, '8086:3e30');
  t.equal(v.get('0000:00:1b.0')!.expressType, 'Root Port');
  t.same(v.get('0000:00:1b.0')!.link, { gen: 3, width: 4 });
  t.equal(v.get('0000:00:1b.0')!.acsCtl, 0);
  const imp = importLspci(fx('desktop-intel.tv.txt'), fx('desktop-intel.vvv.txt'));
  const f = buildFabricUnchecked(imp.spec);
  t.equal(f.tree.rcs[0].hostBridgeId, '8086:3e30');
  t.equal(f.tree.byBdf.get('0000:00:00.0')!.type, 'host-bridge');
  const gn = f.mapType('01:00.0', '02:00.0');
  t.equal(gn.map, 'not-supported', 'GPU and NVMe on different root ports of a non-whitelisted host bridge');
  t.match(gn.reason, /8086:3e30 is not in the P2PDMA whitelist/);
  t.equal(f.upstreamBridgeDistance('01:00.0', '01:00.1'), 2, 'GPU functions');
  t.equal(f.mapType('01:00.0', '01:00.1').map, 'bus-addr');
  t.equal(renderTree(f).split('\n')[0], '-[0000:00]-+-00.0  Intel Corporation 8th Gen Core 8-core Desktop Processor Host Bridge/DRAM Registers [Coffee Lake S] [8086:3e30]');
});

t.test('dual-socket server with PLX switches: captured ACSCtl redirect, whitelisted root ports', async (t) => {
  const imp = importLspci(fx('server-skylake-plx.tvnn.txt'), fx('server-skylake-plx.nnvvv.txt'));
  const f = buildFabricUnchecked(imp.spec);
  t.same(f.tree.rcs.map((r) => r.name), ['pci0000:00', 'pci0000:3a', 'pci0000:5d', 'pci0000:ae', 'pci0000:d7']);
  t.same(f.tree.rcs.map((r) => r.hostBridgeId), ['8086:2020', '8086:2030', '8086:2030', '8086:2030', '8086:2030']);
  const ds = f.tree.byBdf.get('0000:3c:08.0')!;
  t.equal(ds.type, 'downstream-port');
  t.same(ds.link, { gen: 3, width: 16 });
  t.equal(f.tree.byBdf.get('0000:3b:00.0')!.type, 'upstream-port');
  // two V100s below one PLX switch, ACS redirect captured from the machine
  t.equal(f.upstreamBridgeDistance('3d:00.0', '3e:00.0'), -2);
  const v = f.mapType('3d:00.0', '3e:00.0');
  t.equal(v.map, 'thru-host-bridge');
  t.match(v.reason, /pci=disable_acs_redir=0000:3c:08\.0;0000:3c:09\.0/);
  t.match(v.reason, /Skylake-E root port A/);
  // with the redirect disabled, the switch routes directly
  const g = buildFabricUnchecked(importLspci(fx('server-skylake-plx.tvnn.txt'), fx('server-skylake-plx.nnvvv.txt'), { disableAcsRedir: ['0000:3c:08.0', '0000:3c:09.0'] }).spec);
  t.equal(g.mapType('3d:00.0', '3e:00.0').map, 'bus-addr');
  t.equal(g.mapType('3d:00.0', '3e:00.0').distance, 4);
  // across sockets: both stacks whitelisted
  t.equal(f.mapType('3d:00.0', 'b1:00.0').map, 'thru-host-bridge');
  // PCIe-to-PCI bridge with the BMC's VGA behind it
  t.equal(f.tree.byBdf.get('0000:02:00.0')!.parent!.bdf, '0000:01:00.0');
  // without -vvv, the stacks' root port ids are unknown
  const h = buildFabricUnchecked(importLspci(fx('server-skylake-plx.tvnn.txt'), null).spec);
  const u = h.mapType('3d:00.0', 'b1:00.0');
  t.equal(u.map, 'not-supported');
  t.match(u.reason, /host bridge pci0000:3a \[0000:3a\]: its function 0000:3a:00\.0 has no vendor:device id, so it cannot match/, '00.0 exists; only its id is unknown');
});

t.test('AMD Zen desktop: recognised root complex, CPU routes P2P', async (t) => {
  const imp = importLspci(fx('amd-zen-x570.tv.txt'), null);
  t.equal(imp.spec.cpuRoutesP2p, true);
  t.match(imp.notes.join('\n'), /AMD Zen root complex/);
  const f = buildFabricUnchecked(imp.spec);
  const v = f.mapType('0b:00.0', '01:00.0');
  t.equal(v.map, 'thru-host-bridge');
  t.match(v.reason, /cpu_supports_p2pdma/);
  t.equal(f.upstreamBridgeDistance('0b:00.0', '01:00.0'), -1);
  const off = buildFabricUnchecked(importLspci(fx('amd-zen-x570.tv.txt'), null, { cpuRoutesP2p: false }).spec);
  t.equal(off.mapType('0b:00.0', '01:00.0').map, 'not-supported');
  // chipset switch: NIC and SATA below the X570's downstream ports
  t.equal(f.upstreamBridgeDistance('05:00.0', '07:00.0'), 4);
});

t.test('malformed tree: clear error with file and line', async (t) => {
  t.throws(() => parseLspciTree(fx('malformed.tv.txt'), 'malformed.tv.txt'), {
    name: 'LspciParseError',
    line: 13,
    message: /^malformed\.tv\.txt:13: function 1c\.0 at column 11 does not hang off any bus/,
  });
  t.throws(() => parseLspciTree('hello world\n', 'x.txt'), { line: 1, message: /x\.txt:1: unexpected "hello world"/ });
  t.throws(() => parseLspciTree('\n\n', 'e.txt'), { message: /no root bus found/ });
  t.throws(() => parseLspciTree('-[0000:00]-+-00.0  A\n           +-00.0  B\n'), { message: /appears twice/ });
});

t.test('malformed verbose: bad ACSCtl flags and bad header, with line numbers', async (t) => {
  const bad = '00:01.0 PCI bridge: X\n\tACSCtl:\tSrcValid+ Bogus+\n';
  t.throws(() => parseLspciVerbose(bad, 'v.txt'), { line: 2, message: /v\.txt:2: cannot read ACSCtl flags/ });
  t.throws(() => parseLspciVerbose('garbage line\n', 'v.txt'), { line: 1, message: /expected a device header/ });
  t.ok(new LspciParseError('f', 3, 'm') instanceof Error);
});
