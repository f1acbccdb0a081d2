// Kernel.boot without a fabric policy: no pair is known to reach another, so
// P2P is refused with a reason saying why (pci_p2pdma_distance refuses what
// it cannot prove); the peer-private fall-back (migrate to RAM) still works.
import t from 'tap';
import { PAGE_SIZE } from '../../src/shm/constants.js';
import { BarExporter } from '../../src/drivers/bar_exporter.js';
import { MIRROR_PROT } from '../../src/drivers/mirror_driver.js';
import { PROT_READ, PROT_WRITE } from '../../src/kernel/mm.js';
import { KiB, kernelMachine, MiB, mirrorSpec, pattern, openMirrors, bytesEq } from '../fixtures/kernel_machine.js';

t.test('a kernel booted without a fabric policy refuses P2P', async (t) => {
  const { kernel } = await kernelMachine(t, [mirrorSpec('m0'), mirrorSpec('m1'), mirrorSpec('exp', 1 * MiB, 16 * KiB)]);
  const mm = kernel.createMm();
  const [d0, d1] = await openMirrors(t, kernel, mm, ['m0', 'm1']);
  const v = kernel.p2pAllowed(kernel.ref('exp'), kernel.ref('m0'));
  t.equal(v.ok, false);
  t.match(v.reason, /m0 cannot reach exp: the kernel was booted without a fabric policy/);

  const ex = new BarExporter(kernel, 'exp', { importers: '*', readOnly: false, requireIommu: false, cpuMappable: false });
  const { va } = await ex.mmap(mm, 2);
  await t.rejects(d0.read(va, 2), { code: 'EOPNOTSUPP' }, 'the exporter refuses: the topology is unknown');
  t.match(kernel.log.join('\n'), /refuses m0: p2pdma: m0 cannot reach exp: the kernel was booted without a fabric policy/);

  const a = await mm.mmap({ length: 2 * PAGE_SIZE, prot: PROT_READ | PROT_WRITE });
  await mm.write(a, pattern(2 * PAGE_SIZE, 1));
  await d0.migrateToDev(a, 2);
  bytesEq(t, (await d1.read(a, 2)).data, pattern(2 * PAGE_SIZE, 1), 'a peer reads m0-private pages after they migrate back');
  t.same([...(await d0.snapshot(a, 2)).prot], [MIRROR_PROT.WRITE, MIRROR_PROT.WRITE], 'no P2P: the RFC fall-back moved them to RAM');
});

t.test('the policy is asked once per (provider, client) pair, and again once it is swapped', async (t) => {
  const { kernel } = await kernelMachine(t, [mirrorSpec('m0'), mirrorSpec('m1'), mirrorSpec('exp', 1 * MiB, 16 * KiB)]);
  const asked: string[] = [];
  const counting = (verdict: 'bus-addr' | 'not-supported') => (provider: { name: string }, client: { name: string }) => {
    asked.push(`${provider.name}>${client.name}`);
    return { map: verdict, distance: 4, reason: `test says ${verdict}` } as const;
  };
  kernel.policy = counting('bus-addr');
  const exp = kernel.ref('exp');
  for (let i = 0; i < 3; i++) t.equal(kernel.p2pAllowed(exp, kernel.ref('m0')).ok, true);
  t.equal(kernel.p2pAllowed(exp, kernel.ref('m1')).ok, true);
  t.equal(kernel.p2pAllowed(kernel.ref('m1'), kernel.ref('m0')).ok, true);
  t.same(asked, ['exp>m0', 'exp>m1', 'm1>m0'], 'one question per pair (pci_p2pdma_map_type caches map_types per client)');
  kernel.policy = counting('not-supported');
  t.equal(kernel.p2pAllowed(exp, kernel.ref('m0')).ok, false, 'a swapped policy is asked again: no stale verdict');
  t.same(asked.slice(3), ['exp>m0']);
});
