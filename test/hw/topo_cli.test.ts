// `peervma topo`: shipped scenarios and lspci fixtures print tree, groups and matrix; --explain; --json; errors.
import t from 'tap';
import { Command } from 'commander';
import { registerTopo, runTopo } from '../../src/cli/topo.js';

// Content checks on whole sentences: no wrapping (test/cli/topo_width.test.ts checks the 100-column layout).
const UNWRAPPED = 10_000;

const root = new URL('../../', import.meta.url).pathname;
const fx = (n: string) => `${root}test/fixtures/lspci/${n}`;

t.test('shipped scenarios', async (t) => {
  for (const s of ['camera-chain.yaml', 'topo-dual-rc.yaml', 'topo-acs-redirect.yaml', 'topo-amd-zen.yaml']) {
    const out = runTopo(`${root}scenarios/${s}`, {});
    t.match(out, /## PCI tree \(lspci -tv\)\n\n-/, `${s}: tree`);
    t.match(out, /## IOMMU groups\n\nIOMMU group 0/, `${s}: groups`);
    t.match(out, /P2P matrix, policy/, `${s}: matrix`);
  }
  const dual = runTopo(`${root}scenarios/topo-dual-rc.yaml`, {});
  t.match(dual, /-\+-\[0000:00\]---00\.0-\[01-05\]----00\.0-\[02-05\]--\+-08\.0-\[03\]----00\.0  gpu0 \[10de:1db6\]/);
  t.match(dual, / \\-\[0000:80\]-\+-00\.0  socket1 host bridge \[8086:2020\]/);
});

t.test('--explain gives the path and the reason', async (t) => {
  const out = runTopo(`${root}scenarios/topo-acs-redirect.yaml`, { explain: ['gpu0', 'nvme0'] });
  t.match(out, /path walked/);
  t.match(out, /0000:02:00\.0 \(switch downstream port of sw0\) \[ACS redirect: RR CR\]/);
  t.match(out, /2019 upstream_bridge_distance\(\): -2/);
  t.match(out, /pci=disable_acs_redir=0000:02:00\.0;0000:02:01\.0/);
  const fixed = runTopo(`${root}scenarios/topo-acs-redirect.yaml`, { explain: ['gpu0', 'nvme0'], disableAcsRedir: '0000:02:00.0;0000:02:01.0' });
  t.match(fixed, /policy iommu: bus-addr, distance 4/);
  t.throws(() => runTopo(`${root}scenarios/topo-acs-redirect.yaml`, { explain: ['gpu0'] }), /--explain takes two devices/);
  t.throws(() => runTopo(`${root}scenarios/topo-acs-redirect.yaml`, { explain: ['gpu0', 'zz'] }), /'zz' is not a device/);
});

t.test('lspci fixtures', async (t) => {
  const out = runTopo(undefined, { lspci: fx('server-skylake-plx.tvnn.txt'), lspciVvv: fx('server-skylake-plx.nnvvv.txt') });
  t.match(out, /-\+-\[0000:00\]-\+-00\.0  Intel Corporation Sky Lake-E DMI3 Registers \[8086:2020\]/);
  t.match(out, /host-bridge 4/);
  const ex = runTopo(undefined, { lspci: fx('desktop-intel.tv.txt'), lspciVvv: fx('desktop-intel.vvv.txt'), explain: ['01:00.0', '02:00.0'] }, UNWRAPPED);
  t.match(ex, /8086:3e30 is not in the P2PDMA whitelist/);
  const amd = JSON.parse(runTopo(undefined, { lspci: fx('amd-zen-x570.tv.txt'), json: true }));
  t.equal(amd.cpuRoutesP2p, true);
  t.ok(amd.matrix.some((m: { map: string }) => m.map === 'thru-host-bridge'));
  t.ok(Array.isArray(amd.iommuGroups) && amd.iommuGroups.length > 1);
  t.throws(() => runTopo(undefined, { lspci: fx('malformed.tv.txt') }), /malformed\.tv\.txt:13:/);
  t.throws(() => runTopo(undefined, { lspciVvv: fx('desktop-intel.vvv.txt') }), /--lspci-vvv needs --lspci/);
  t.throws(() => runTopo(undefined, {}), /give a scenario file or --lspci/);
});

t.test('--json of a scenario', async (t) => {
  const j = JSON.parse(runTopo(`${root}scenarios/topo-amd-zen.yaml`, { json: true }));
  t.equal(j.policy, 'iommu');
  t.ok(j.functions.find((f: { device: string | null }) => f.device === 'gpu0'));
  t.equal(j.matrix.find((m: { provider: string; client: string }) => m.provider === 'gpu0' && m.client === 'nvme0').map, 'thru-host-bridge');
});

t.test('registerTopo: user errors go to stderr with exit code 2, no stack', async (t) => {
  const program = new Command('peervma');
  registerTopo(program);
  const writes: string[] = [];
  const orig = process.stderr.write.bind(process.stderr);
  (process.stderr as unknown as { write: (s: string) => boolean }).write = (s: string) => {
    writes.push(String(s));
    return true;
  };
  const prev = process.exitCode;
  try {
    await program.parseAsync(['node', 'peervma', 'topo', '--lspci', fx('malformed.tv.txt')]);
  } finally {
    (process.stderr as unknown as { write: typeof orig }).write = orig;
  }
  t.equal(process.exitCode, 2);
  process.exitCode = prev;
  t.match(writes.join(''), /^peervma topo: .*malformed\.tv\.txt:13: function 1c\.0/);
  t.notMatch(writes.join(''), /\n\s+at /);
});
