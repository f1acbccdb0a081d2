// migrate_vma_finalize frees a migration's source pages: whichever way the
// pages move (RAM -> device-private, and back), every freed source page is
// poisoned in every byte with its generation bumped once, and the destination
// holds the data.
import t from 'tap';
import { PAGE_SIZE, POISON_BYTE } from '../../src/shm/constants.js';
import { PROT_READ, PROT_WRITE } from '../../src/kernel/mm.js';
import { migrateToDevice, migrateToSystem } from '../../src/kernel/migrate.js';
import { kernelMachine, mirrorSpec, openMirrors, pattern, bytesEq } from '../fixtures/kernel_machine.js';

const poisoned = (bytes: Uint8Array, page: number) => bytes.subarray(page * PAGE_SIZE, (page + 1) * PAGE_SIZE).every((b) => b === POISON_BYTE);

t.test('both ways, the freed source pages are poisoned throughout and their generations bumped', async (t) => {
  const { kernel } = await kernelMachine(t, [mirrorSpec('m0')], { check: true });
  const mm = kernel.createMm();
  await openMirrors(t, kernel, mm, ['m0']);
  const n = 24;
  const va = await mm.mmap({ length: n * PAGE_SIZE, prot: PROT_READ | PROT_WRITE });
  const data = pattern(n * PAGE_SIZE, 13);
  await mm.write(va, data);
  const vpn0 = va / PAGE_SIZE;
  const pfnOf = (i: number) => (mm.pt.get(vpn0 + i) as { pfn: number }).pfn;
  const pfns = Array.from({ length: n }, (_, i) => pfnOf(i));
  const ramGen = kernel.machine.shm.ramGen;
  const gens = pfns.map((p) => ramGen[p]);
  const dev = kernel.devmem('m0');

  t.equal(await migrateToDevice(mm, va, va + n * PAGE_SIZE, dev), n, 'every page migrates to m0');
  t.same(pfns.filter((p) => !poisoned(kernel.ramBytes, p)), [], 'every freed RAM page holds POISON_BYTE in every byte');
  t.same(pfns.filter((p, i) => ramGen[p] !== gens[i] + 1), [], 'and its generation went up by one (freed once)');
  const pages = Array.from({ length: n }, (_, i) => (mm.pt.get(vpn0 + i) as { page: number }).page);
  bytesEq(t, Uint8Array.from(pages.flatMap((p) => [...dev.bytes.subarray(p * PAGE_SIZE, (p + 1) * PAGE_SIZE)])), data, 'the device pages hold the data');

  const devGens = pages.map((p) => dev.gen[p]);
  t.equal(await migrateToSystem(mm, va, va + n * PAGE_SIZE), n, 'and back to RAM');
  t.same(pages.filter((p) => !poisoned(dev.bytes, p)), [], 'every freed device page holds POISON_BYTE in every byte');
  t.same(pages.filter((p, i) => dev.gen[p] !== devGens[i] + 1), [], 'and its generation went up by one');
  bytesEq(t, await mm.read(va, n * PAGE_SIZE), data, 'the CPU reads the data back');
});
