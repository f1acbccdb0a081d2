// Every verdict states what it assumed (ACS unknown, host bridge id unknown, IOMMU state,
// CPU routing) in text, --explain and --json, with the flag that states it; --host-bridge
// states a root bus's host bridge id for a capture without -nn.
import t from 'tap';
import { runTopo } from '../../src/cli/topo.js';

// Content checks on whole sentences: no wrapping (test/cli/topo_width.test.ts checks the 100-column layout).
const UNWRAPPED = 10_000;

const root = new URL('../../', import.meta.url).pathname;
const fx = (n: string) => `${root}test/fixtures/lspci/${n}`;
const TREE = fx('server-skylake-plx.tvnn.txt');

t.test('--explain lists the assumptions and the notes on the input', async (t) => {
  const out = runTopo(undefined, { lspci: TREE, explain: ['3d:00.0', 'b1:00.0'] }, UNWRAPPED);
  t.match(out, /\nassumptions:\n {2}- ACS state of 0000:3c:08\.0, 0000:3a:00\.0, 0000:b0:08\.0, 0000:ae:00\.0 unknown: assumed ACS capable \(SV RR CR UF\) with nothing enabled by firmware \(pass `sudo lspci -nnvvv` output with --lspci-vvv/);
  t.match(out, /- host bridge id of pci0000:3a unknown: assumed not on the P2PDMA whitelist \(state it with --host-bridge 3a=VVVV:DDDD, or recapture with `lspci -tvnn`\)/);
  t.match(out, /- IOMMU state not in the capture: assumed off \(state it with --iommu on\|off\)/);
  t.match(out, /- CPU vendor and family unknown: assumed it does not route P2P between root ports/);
  t.match(out, /\nnotes on the input:\n {2}- no `lspci -vvv` given/);
});

t.test('--json carries the assumptions and notes, per verdict and for the matrix', async (t) => {
  const one = JSON.parse(runTopo(undefined, { lspci: TREE, explain: ['3d:00.0', 'b1:00.0'], json: true }));
  t.equal(one.map, 'not-supported');
  t.match(one.assumptions, [/^ACS state of/, /^host bridge id of pci0000:3a unknown/, /^host bridge id of pci0000:ae unknown/, /^socket of pci0000:3a and pci0000:ae not in the capture/, /^IOMMU state not in the capture/, /^CPU vendor and family unknown/]);
  t.match(one.notes, [/no `lspci -vvv` given/]);
  const all = JSON.parse(runTopo(undefined, { lspci: TREE, json: true }));
  t.ok(all.assumptions.length > 0);
  t.match(all.pairAssumptions[0], { provider: String, client: String, assumptions: [String] });
});

t.test('what the input states is not listed as assumed; the text report has an assumptions section', async (t) => {
  const out = runTopo(undefined, { lspci: TREE, lspciVvv: fx('server-skylake-plx.nnvvv.txt'), iommu: 'off', explain: ['3d:00.0', '3e:00.0'] });
  t.notMatch(out, /ACS state of .* unknown|host bridge id of .* unknown|IOMMU state not in the capture/);
  t.match(runTopo(undefined, { lspci: TREE }), /\n## Assumptions behind these verdicts\n\n- ACS state of 14 port\(s\) unknown/);
  t.notMatch(runTopo(`${root}scenarios/topo-dual-rc.yaml`, {}), /## Assumptions/, 'a scenario states everything');
});

t.test('--host-bridge states an unknown host bridge id and changes the verdict', async (t) => {
  const before = JSON.parse(runTopo(undefined, { lspci: TREE, explain: ['3d:00.0', 'b1:00.0'], json: true }));
  const after = JSON.parse(runTopo(undefined, { lspci: TREE, explain: ['3d:00.0', 'b1:00.0'], json: true, hostBridge: '3a=8086:2030,0000:ae=8086:2030' }));
  t.equal(before.map, 'not-supported');
  t.equal(after.map, 'thru-host-bridge');
  t.notMatch(after.assumptions.join('\n'), /host bridge id/);
  t.throws(() => runTopo(undefined, { lspci: TREE, hostBridge: '3a=intel' }), /--host-bridge: expected BUS=VVVV:DDDD/);
  t.throws(() => runTopo(undefined, { lspci: TREE, hostBridge: '42=8086:2030' }), /--host-bridge: no root bus 0000:42 .*\(root buses: 00, 3a, 5d, ae, d7\)/);
});

t.test('in --lspci mode the fixes are topo flags or the recapture command, never scenario keys', async (t) => {
  const v = JSON.parse(runTopo(undefined, { lspci: TREE, explain: ['3d:00.0', 'b1:00.0'], json: true }));
  t.match(v.reason, /its function 0000:3a:00\.0 has no vendor:device id \(the capture lacks -nn: state it with --host-bridge or recapture with `lspci -tvnn`\)/);
  t.match(v.fixes.join('\n'), /--host-bridge BUS=VVVV:DDDD or recapture with `lspci -tvnn`/);
  t.match(v.fixes.join('\n'), /--cpu-routes-p2p/);
  const redir = JSON.parse(runTopo(undefined, { lspci: TREE, lspciVvv: fx('server-skylake-plx.nnvvv.txt'), explain: ['3d:00.0', '3e:00.0'], json: true }));
  t.match(redir.reason, /--disable-acs-redir '0000:3c:08\.0;0000:3c:09\.0'/);
  for (const x of [v, redir]) t.notMatch(JSON.stringify(x), /topology\.|scenario:/);
  const sc = JSON.parse(runTopo(`${root}scenarios/topo-acs-redirect.yaml`, { explain: ['gpu0', 'nvme0'], json: true }));
  t.match(sc.reason, /scenario: topology\.disableAcsRedir/, 'a scenario is fixed by its keys');
});

t.test('--iommu-rc and --acs-redir state the IOMMU of one root complex and the redirect of one port', async (t) => {
  // Without -vvv the PLX downstream ports' ACS is assumed off: the V100s talk below the switch.
  const base = JSON.parse(runTopo(undefined, { lspci: TREE, explain: ['3d:00.0', '3e:00.0'], json: true }));
  t.equal(base.map, 'bus-addr');
  const redir = JSON.parse(runTopo(undefined, { lspci: TREE, explain: ['3d:00.0', '3e:00.0'], json: true, acsRedir: '0000:3c:08.0=on', hostBridge: '3a=8086:2030' }));
  t.equal(redir.map, 'thru-host-bridge', 'redirect on one downstream port forces the TLPs up to the root complex');
  t.match(redir.reason, /0000:3c:08\.0 .*ACSCtl RR CR/);
  const iommu = JSON.parse(runTopo(undefined, { lspci: TREE, explain: ['3d:00.0', '3e:00.0'], json: true, iommuRc: '3a=on', hostBridge: '3a=8086:2030' }));
  t.equal(iommu.map, 'thru-host-bridge', 'the IOMMU of pci0000:3a sets redirect on its ports');
  t.notMatch(iommu.assumptions.join('\n'), /IOMMU state not in the capture/);
  const other = JSON.parse(runTopo(undefined, { lspci: TREE, explain: ['3d:00.0', '3e:00.0'], json: true, iommuRc: 'ae=on' }));
  t.equal(other.map, 'bus-addr', 'another root complex\'s IOMMU does not touch this path');
  t.throws(() => runTopo(undefined, { lspci: TREE, acsRedir: '0000:3d:00.0=on' }), /--acs-redir: 0000:3d:00\.0 is not a root or switch downstream port of the capture/);
  t.throws(() => runTopo(undefined, { lspci: TREE, iommuRc: '3a=maybe' }), /--iommu-rc: expected BUS=on\|off/);
  t.throws(() => runTopo(`${root}scenarios/topo-dual-rc.yaml`, { iommuRc: '00=on' }), /apply to --lspci captures/);
});
