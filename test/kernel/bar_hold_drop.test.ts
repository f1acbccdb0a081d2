// BarManager forgets an owner's hold once a release empties it, and only
// then (src/kernel/bar_manager.ts releaseRange): a p2p_unmap of one page of a
// large hold keeps the hold (a revoke storm's 64 single-page releases a
// round); releasing its last pages drops it, and the owner's list goes with
// its last hold. (That a release emptying no hold builds no new list is a
// cost, seen in profiles, not asserted here: the old code kept the same list too.)
import t from 'tap';
import { Machine } from '../../src/devices/machine.js';
import { BarExporter } from '../../src/drivers/bar_exporter.js';
import { allP2p } from '../../src/kernel/p2p_map.js';
import { Kernel } from '../../src/kernel/kernel.js';
import { PAGE_SIZE } from '../../src/shm/constants.js';
import { MiB } from '../fixtures/kernel_machine.js';

t.test('a hold is dropped when a release empties it, not before', async (t) => {
  const npages = 16;
  const machine = await Machine.create({
    ramBytes: 16 * MiB,
    timeoutMs: 10000,
    devices: [
      { name: 'acc0', kind: 'accelerator', memBytes: 2 * npages * PAGE_SIZE, barBytes: npages * PAGE_SIZE, props: {} },
      { name: 'nic0', kind: 'nic', memBytes: MiB, barBytes: 0, props: {} },
    ],
  });
  t.teardown(() => machine.shutdown());
  await machine.start();
  const kernel = Kernel.boot(machine, { check: true, policy: allP2p });
  const mm = kernel.createMm();
  const ex = new BarExporter(kernel, 'acc0');
  const { va, vma } = await ex.mmap(mm, npages);
  const bar = ex.barManager;
  const key = 'nic0@' + mm.name;
  const holds = (): readonly unknown[] | undefined => (bar as unknown as { holds: Map<string, unknown[]> }).holds.get(key);

  t.ok((await ex.p2pMapRuns(vma, kernel.ref('nic0'), va, npages, Int32Array.of(0, 8, 12, 16), false)).ok);
  const list = holds();
  t.equal(list?.length, 2, 'two runs, two holds');
  t.equal(bar.release(key, va + 2 * PAGE_SIZE, va + 3 * PAGE_SIZE), 1);
  t.equal(holds(), list, 'one page of a hold released: the same list, both holds kept');
  t.equal(list?.length, 2);
  t.equal(bar.release(key, va + 12 * PAGE_SIZE, va + 16 * PAGE_SIZE), 4);
  t.equal(holds()?.length, 1, 'the second hold emptied: dropped');
  t.equal(bar.release(key, va, va + 8 * PAGE_SIZE), 7, 'the first hold minus the page already released');
  t.equal(holds(), undefined, 'no hold left: the owner is forgotten');
  t.equal(bar.holdersOf(ex.pageOf(vma, 0)), 0);
});
