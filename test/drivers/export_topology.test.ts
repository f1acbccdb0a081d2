// BarExporter.mmap asks the kernel's P2P verdict for each importer its policy names
// (pci_p2pdma_distance, cached per pair): the first p2p_map then only
// reads the cached verdict. An importer policy of '*' names nobody, so nothing is asked
// before a map.
import t from 'tap';
import { BarExporter } from '../../src/drivers/bar_exporter.js';
import { KiB, kernelMachine, MiB, mirrorSpec, openMirrors } from '../fixtures/kernel_machine.js';

/** A kernel on `devices` whose P2P policy allows every pair and records each pair it is asked about. */
async function recording(t: Parameters<typeof kernelMachine>[0], devices: Parameters<typeof kernelMachine>[1]) {
  const { kernel } = await kernelMachine(t, devices);
  const asked: string[] = [];
  kernel.policy = (provider, client) => {
    asked.push(`${provider.name}>${client.name}`);
    return { map: 'bus-addr', distance: 4, reason: 'test' };
  };
  return { kernel, asked };
}

const policyOf = (importers: '*' | string[]) => ({ importers, readOnly: false, requireIommu: false, cpuMappable: false });

t.test('mmap asks the verdict of each named importer, once; the map asks nothing more', async (t) => {
  const { kernel, asked } = await recording(t, [mirrorSpec('m0'), mirrorSpec('m1'), mirrorSpec('exp', 1 * MiB, 16 * KiB)]);
  const mm = kernel.createMm();
  const [d0] = await openMirrors(t, kernel, mm, ['m0']);
  const ex = new BarExporter(kernel, 'exp', policyOf(['m0', 'no-such-device']));
  const { va } = await ex.mmap(mm, 2);
  t.same(asked, ['exp>m0'], 'asked at mmap, for the named importer that exists');
  await ex.mmap(mm, 1);
  t.same(asked, ['exp>m0'], 'a second mmap reads the cached verdict');
  await d0.read(va, 2);
  t.same(asked, ['exp>m0'], 'the map reads it too');
  t.equal(ex.mapCalls > 0, true, 'the read went through p2p_map');
});

t.test("an importer policy of '*' asks nothing at mmap: the first map asks", async (t) => {
  const { kernel, asked } = await recording(t, [mirrorSpec('m0'), mirrorSpec('exp', 1 * MiB, 16 * KiB)]);
  const mm = kernel.createMm();
  const [d0] = await openMirrors(t, kernel, mm, ['m0']);
  const ex = new BarExporter(kernel, 'exp', policyOf('*'));
  const { va } = await ex.mmap(mm, 2);
  t.same(asked, []);
  await d0.read(va, 2);
  t.same(asked, ['exp>m0']);
});

t.test('a policy that throws at mmap leaves nothing behind: no device pages, no VMA', async (t) => {
  const { kernel, machine } = await kernelMachine(t, [mirrorSpec('m0'), mirrorSpec('exp', 1 * MiB, 16 * KiB)]);
  kernel.policy = () => {
    throw new Error('policy probe failed');
  };
  const mm = kernel.createMm();
  await openMirrors(t, kernel, mm, ['m0']);
  const ex = new BarExporter(kernel, 'exp', policyOf(['m0']));
  const mem = machine.device('exp').mem!;
  const free0 = mem.freePages;
  const vmas0 = mm.vmaList.length;
  await t.rejects(ex.mmap(mm, 2), /policy probe failed/);
  t.equal(mem.freePages, free0, 'no device page taken');
  t.equal(mm.vmaList.length, vmas0, 'no VMA mapped');
});
