// Every CPU PTE has the same fields in the same order, whatever its kind and
// however it was made (zero-page read fault, write fault, wp copy off the zero
// page, migration to device-private memory and back, make_device_exclusive):
// V8 then gives them one hidden class, and hmm's per-page reads of pte.kind
// stay monomorphic. Before, each kind was its own object literal and
// `exclusive` was added later: hmm's walkAnonVma deoptimized ('wrong map')
// when a kind first seen later showed up (src/kernel/vma.ts, ramPte/zeroPte/privatePte).
import t from 'tap';
import { PAGE_SIZE } from '../../src/shm/constants.js';
import { PROT_READ, PROT_WRITE } from '../../src/kernel/mm.js';
import { migrateToDevice, migrateToSystem } from '../../src/kernel/migrate.js';
import { kernelMachine, mirrorSpec, openMirrors } from '../fixtures/kernel_machine.js';

t.test('every PTE kind, however made, has the same keys in the same order', async (t) => {
  const { kernel } = await kernelMachine(t, [mirrorSpec('m0')], { check: true });
  const mm = kernel.createMm();
  await openMirrors(t, kernel, mm, ['m0']);
  const va = await mm.mmap({ length: 6 * PAGE_SIZE, prot: PROT_READ | PROT_WRITE });
  const vpn0 = va / PAGE_SIZE;
  const keys = (i: number) => Object.keys(mm.pt.get(vpn0 + i)!).join(',');
  await mm.read(va, 1); // page 0: zero page
  await mm.write(va + PAGE_SIZE, new Uint8Array([1])); // page 1: write fault, RAM
  await mm.read(va + 2 * PAGE_SIZE, 1);
  await mm.write(va + 2 * PAGE_SIZE, new Uint8Array([2])); // page 2: wp copy off the zero page
  await mm.write(va + 3 * PAGE_SIZE, new Uint8Array([3]));
  t.equal(await migrateToDevice(mm, va + 3 * PAGE_SIZE, va + 5 * PAGE_SIZE, kernel.devmem('m0')), 2, 'pages 3 and 4 migrate to m0');
  t.equal(await migrateToSystem(mm, va + 4 * PAGE_SIZE, va + 5 * PAGE_SIZE), 1, 'page 4 comes back to RAM');
  await mm.write(va + 5 * PAGE_SIZE, new Uint8Array([5]));
  t.equal(await mm.locked(() => mm.makeDeviceExclusiveLocked(va + 5 * PAGE_SIZE, 'someone')), 0, 'page 5 is made device-exclusive');
  const kinds = [0, 1, 2, 3, 4, 5].map((i) => mm.pt.get(vpn0 + i)!.kind);
  t.same(kinds, ['zero', 'ram', 'ram', 'devprivate', 'ram', 'ram'], 'the kinds the steps made');
  t.equal(mm.pt.get(vpn0 + 5)!.exclusive, 'someone', 'the exclusive holder is recorded');
  t.same([1, 2, 3, 4, 5].map(keys), [1, 2, 3, 4, 5].map(() => keys(0)), `one key list for all: ${keys(0)}`);
});
