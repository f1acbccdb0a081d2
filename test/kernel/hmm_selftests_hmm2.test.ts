// Port of tools/testing/selftests/mm/hmm-tests.c, FIXTURE(hmm2), variant
// hmm2_device_private: two mirror devices on one process (migrate_mixed,
// snapshot, double_map), with upstream's expectations. The kernel is booted
// without a fabric policy, so no P2P: a peer's private page is not present
// to a snapshot and migrates back on a fault, as in Linux without the RFC.
// (With P2P allowed, the RFC's extension is tested in mirror.test.ts.)
import t from 'tap';
import { PAGE_SIZE } from '../../src/shm/constants.js';
import { PROT_NONE, PROT_READ, PROT_WRITE } from '../../src/kernel/mm.js';
import { MIRROR_PROT } from '../../src/drivers/mirror_driver.js';
import { asInts, firstMismatch, hmmMachine, hmmOpen, ints } from '../fixtures/hmm_selftests.js';

const RW = PROT_READ | PROT_WRITE;
const P = PAGE_SIZE;

t.test('hmm2 (device private)', async (t) => {
  const kernel = await hmmMachine(t);

  // Try to migrate various memory types to device private memory.
  t.test('migrate_mixed', async (t) => {
    const { mm, fd } = await hmmOpen(t, kernel, 2);
    const npages = 6;
    const p = await mm.mmap({ length: npages * P, prot: PROT_NONE });
    // Migrating a protected area should be an error.
    await t.rejects(fd[1].migrateToDev(p, npages), { code: 'EINVAL' });
    // Punch a hole after the first page address.
    await mm.munmap(p + P, P);
    // We expect an error if the vma doesn't cover the range.
    await t.rejects(fd[1].migrateToDev(p, 3), { code: 'EINVAL' });
    // Page 2 will be a read-only zero page.
    await mm.mprotect(p + 2 * P, P, PROT_READ);
    const val = asInts(await mm.read(p + 2 * P, 4))[0] + 3;
    t.equal(val, 3);
    // Page 3 will be read-only.
    await mm.mprotect(p + 3 * P, P, RW);
    await mm.write(p + 3 * P, ints(1, () => val).subarray(0, 4));
    await mm.mprotect(p + 3 * P, P, PROT_READ);
    // Page 4-5 will be read-write.
    await mm.mprotect(p + 4 * P, 2 * P, RW);
    await mm.write(p + 4 * P, ints(1, () => val).subarray(0, 4));
    await mm.write(p + 5 * P, ints(1, () => val).subarray(0, 4));
    // Now try to migrate pages 2-5 to device 1.
    const r = await fd[1].migrateToDev(p + 2 * P, 4);
    t.equal(r.cpages, 4);
    // Page 5 won't be migrated to device 0 because it's on device 1.
    await t.rejects(fd[0].migrateToDev(p + 5 * P, 1), { code: 'ENOENT' });
  });

  // Test memory snapshot without faulting in pages accessed by the device.
  t.test('snapshot', async (t) => {
    const { mm, fd } = await hmmOpen(t, kernel, 2);
    const npages = 7;
    const p = await mm.mmap({ length: npages * P, prot: PROT_NONE });
    // Punch a hole after the first page address.
    await mm.munmap(p + P, P);
    // Page 2 will be read-only zero page.
    await mm.mprotect(p + 2 * P, P, PROT_READ);
    const val = asInts(await mm.read(p + 2 * P, 4))[0] + 3;
    // Page 3 will be read-only.
    await mm.mprotect(p + 3 * P, P, RW);
    await mm.write(p + 3 * P, ints(1, () => val).subarray(0, 4));
    await mm.mprotect(p + 3 * P, P, PROT_READ);
    // Page 4-6 will be read-write.
    await mm.mprotect(p + 4 * P, 3 * P, RW);
    await mm.write(p + 4 * P, ints(1, () => val).subarray(0, 4));
    // Page 5 will be migrated to device 0.
    t.equal((await fd[0].migrateToDev(p + 5 * P, 1)).cpages, 1);
    // Page 6 will be migrated to device 1.
    t.equal((await fd[1].migrateToDev(p + 6 * P, 1)).cpages, 1);
    // Simulate a device snapshotting CPU pagetables.
    const s = await fd[0].snapshot(p, npages);
    t.equal(s.cpages, npages);
    t.same([...s.prot], [
      MIRROR_PROT.ERROR, // PROT_NONE
      MIRROR_PROT.ERROR, // the hole
      MIRROR_PROT.ZERO | MIRROR_PROT.READ,
      MIRROR_PROT.READ,
      MIRROR_PROT.WRITE,
      MIRROR_PROT.DEV_PRIVATE_LOCAL | MIRROR_PROT.WRITE,
      MIRROR_PROT.NONE, // device 1's page: not present to device 0
    ]);
  });

  // Test two devices reading the same memory (double mapped).
  t.test('double_map', async (t) => {
    const { mm, fd } = await hmmOpen(t, kernel, 2);
    const npages = 6;
    const ptr = await mm.mmap({ length: npages * P, prot: RW });
    await mm.write(ptr, ints(npages, (i) => i));
    await mm.mprotect(ptr, npages * P, PROT_READ);
    for (const d of [fd[0], fd[1]]) {
      const r = await d.read(ptr, npages);
      t.equal(r.cpages, npages);
      t.equal(r.faults, 1);
      t.equal(firstMismatch(r.data!, (i) => i), -1, `what ${d.name} read`);
    }
    // Migrate pages to device 1 and try to read from device 0.
    t.equal((await fd[1].migrateToDev(ptr, npages)).cpages, npages);
    const r = await fd[0].read(ptr, npages);
    t.equal(r.cpages, npages);
    t.equal(r.faults, 1);
    t.equal(firstMismatch(r.data!, (i) => i), -1, 'what device 0 read');
    t.equal(fd[0].violations().count + fd[1].violations().count, 0);
  });
});
