// Port of tools/testing/selftests/mm/hmm-tests.c, FIXTURE(hmm), variant
// hmm_device_private: open/close and the anonymous READ/WRITE cases, with
// upstream's expectations (errno, cpages, faults, data). Test names are the
// upstream TEST_F names; docs/kernel-map.md lists every upstream case.
import t from 'tap';
import { PAGE_SIZE } from '../../src/shm/constants.js';
import { PROT_NONE, PROT_READ, PROT_WRITE } from '../../src/kernel/mm.js';
import { asInts, firstMismatch, HMM_BUFFER_PAGES, hmmMachine, hmmOpen, ints, NTIMES } from '../fixtures/hmm_selftests.js';

const RW = PROT_READ | PROT_WRITE;
const npages = HMM_BUFFER_PAGES;
const size = npages * PAGE_SIZE;

t.test('hmm (device private)', async (t) => {
  const kernel = await hmmMachine(t);

  // Simple NULL test of device open/close.
  t.test('open_close', async (t) => {
    await hmmOpen(t, kernel, 1);
  });

  // Read private anonymous memory.
  t.test('anon_read', async (t) => {
    const { mm, fd } = await hmmOpen(t, kernel, 1);
    const ptr = await mm.mmap({ length: size, prot: RW });
    // Initialize buffer in system memory but leave the first two pages zero (pte_none and pfn_zero).
    const init = ints(npages, (i) => (i < (2 * PAGE_SIZE) / 4 ? 0 : i));
    await mm.write(ptr + 2 * PAGE_SIZE, init.subarray(2 * PAGE_SIZE));
    await mm.mprotect(ptr, size, PROT_READ);
    // Populate the CPU page table with a special zero page.
    t.same(asInts(await mm.read(ptr + PAGE_SIZE, 4))[0], 0);
    const r = await fd[0].read(ptr, npages);
    t.equal(r.cpages, npages);
    t.equal(r.faults, 1);
    t.equal(firstMismatch(r.data!, (i) => (i < (2 * PAGE_SIZE) / 4 ? 0 : i)), -1, 'what the device read');
  });

  // Read private anonymous memory which has been protected with mprotect() PROT_NONE.
  t.test('anon_read_prot', async (t) => {
    const { mm, fd } = await hmmOpen(t, kernel, 1);
    const ptr = await mm.mmap({ length: size, prot: RW });
    await mm.write(ptr, ints(npages, (i) => i));
    await mm.mprotect(ptr, size, PROT_NONE);
    await t.rejects(fd[0].read(ptr, npages), { code: 'EFAULT' });
    await mm.mprotect(ptr, size, PROT_READ);
    t.equal(firstMismatch(await mm.read(ptr, size), (i) => i), -1, 'the CPU still reads its data');
  });

  // Write private anonymous memory.
  t.test('anon_write', async (t) => {
    const { mm, fd } = await hmmOpen(t, kernel, 1);
    const ptr = await mm.mmap({ length: size, prot: RW });
    const r = await fd[0].write(ptr, npages, ints(npages, (i) => i));
    t.equal(r.cpages, npages);
    t.equal(r.faults, 1);
    t.equal(firstMismatch(await mm.read(ptr, size), (i) => i), -1, 'what the device wrote');
  });

  // Write private anonymous memory which has been protected with mprotect() PROT_READ.
  t.test('anon_write_prot', async (t) => {
    const { mm, fd } = await hmmOpen(t, kernel, 1);
    const ptr = await mm.mmap({ length: size, prot: PROT_READ });
    // Simulate a device reading a zero page of memory.
    const r = await fd[0].read(ptr, 1);
    t.equal(r.cpages, 1);
    t.equal(r.faults, 1);
    await t.rejects(fd[0].write(ptr, npages, ints(npages, (i) => i)), { code: 'EPERM' });
    t.equal(firstMismatch(await mm.read(ptr, size), () => 0), -1, 'nothing written');
    // Now allow writing and see that the zero page is replaced.
    await mm.mprotect(ptr, size, RW);
    const w = await fd[0].write(ptr, npages, ints(npages, (i) => i));
    t.equal(w.cpages, npages);
    t.equal(w.faults, 1);
    t.equal(firstMismatch(await mm.read(ptr, size), (i) => i), -1, 'what the device wrote');
  });

  // Read anonymous memory multiple times.
  t.test('anon_read_multiple', async (t) => {
    const { mm, fd } = await hmmOpen(t, kernel, 1);
    for (let c = 0; c < NTIMES; c++) {
      const ptr = await mm.mmap({ length: size, prot: RW });
      await mm.write(ptr, ints(npages, (i) => i + c));
      const r = await fd[0].read(ptr, npages);
      t.equal(r.cpages, npages);
      t.equal(r.faults, 1);
      t.equal(firstMismatch(r.data!, (i) => i + c), -1, `pass ${c}: what the device read`);
      await mm.munmap(ptr, size);
    }
  });

  // Try reading anonymous memory while it is being unmapped.
  t.test('anon_teardown', async (t) => {
    const { mm, fd } = await hmmOpen(t, kernel, 1);
    let ok = 0;
    for (let c = 0; c < NTIMES; c++) {
      const ptr = await mm.mmap({ length: size, prot: RW });
      await mm.write(ptr, ints(npages, (i) => i + c));
      // unmap_buffer(): delay for a bit and then unmap the second half while it is being read.
      const unmapped = new Promise<void>((res, rej) => setTimeout(() => mm.munmap(ptr + size / 2, size / 2).then(res, rej), Math.random() * 4));
      const r = await fd[0].read(ptr, npages).catch((e: { code?: string }) => e);
      if ('cpages' in r) {
        ok++;
        t.equal(r.cpages, npages);
        t.equal(r.faults, 1);
        t.equal(firstMismatch(r.data!, (i) => i + c), -1, `pass ${c}: what the device read`);
      } else {
        t.equal(r.code, 'EFAULT', `pass ${c}: the READ reached the unmapped half`);
      }
      await unmapped;
      await mm.munmap(ptr, size / 2);
    }
    t.equal(fd[0].violations().count, 0, `no use after unmap (${ok} of ${NTIMES} reads finished first)`);
  });

  // Basic check of exclusive faulting.
  t.test('exclusive', async (t) => {
    const { mm, fd } = await hmmOpen(t, kernel, 1);
    const ptr = await mm.mmap({ length: size, prot: RW });
    await mm.write(ptr, ints(npages, (i) => i));
    // Map memory exclusively for device access.
    const r = await fd[0].exclusive(ptr, npages);
    t.equal(r.cpages, npages);
    t.equal(firstMismatch(r.data, (i) => i), -1, 'what the device read');
    await t.rejects(Promise.resolve().then(() => fd[0].checkExclusive(ptr, npages)), { code: 'EPERM' }, 'atomic access held');
    // Fault pages back to system memory and check them (ptr[i]++).
    const cur = asInts(await mm.read(ptr, size));
    t.equal(firstMismatch(new Uint8Array(cur.buffer), (i) => i), -1);
    await mm.write(ptr, ints(npages, (i) => cur[i] + 1));
    t.equal(firstMismatch(await mm.read(ptr, size), (i) => i + 1), -1);
    // Check atomic access revoked.
    fd[0].checkExclusive(ptr, npages);
  });

  // Not an upstream TEST_F: hmm.exclusive followed by HMM_DMIRROR_MIGRATE_TO_DEV, with upstream's answer.
  // migrate_vma_collect_pmd() does not collect a device-exclusive entry (a non-present entry that is not
  // device-private), and dmirror_interval_invalidate() returns before dmirror_do_update() for its own
  // migration, so the atomic entry stays; dmirror_do_read() finds the page in the mirror's table: 0,
  // cpages = npages, the pages stay in system memory, and CHECK_EXCLUSIVE still fails with EPERM.
  t.test('exclusive then migrate: exclusive pages are not migrated, atomic access stays', async (t) => {
    const { mm, fd } = await hmmOpen(t, kernel, 1);
    const n = 4;
    const ptr = await mm.mmap({ length: n * PAGE_SIZE, prot: RW });
    await mm.write(ptr, ints(n, (i) => i));
    t.equal((await fd[0].exclusive(ptr, 2)).cpages, 2, 'pages 0-1 exclusive');
    const r = await fd[0].migrateToDev(ptr, n);
    t.equal(r.cpages, n);
    t.equal(firstMismatch(r.data, (i) => i), -1, 'what the device read');
    t.same([0, 1, 2, 3].map((i) => mm.pt.get(ptr / PAGE_SIZE + i)?.kind), ['ram', 'ram', 'devprivate', 'devprivate'], 'only pages 2-3 migrated');
    t.throws(() => fd[0].checkExclusive(ptr, 2), { code: 'EPERM' }, 'atomic access still held');
    // The CPU touches them: restored, atomic access revoked, data intact.
    t.equal(firstMismatch(await mm.read(ptr, n * PAGE_SIZE), (i) => i), -1);
    fd[0].checkExclusive(ptr, 2);
  });

  t.test('exclusive_mprotect', async (t) => {
    const { mm, fd } = await hmmOpen(t, kernel, 1);
    const ptr = await mm.mmap({ length: size, prot: RW });
    await mm.write(ptr, ints(npages, (i) => i));
    const r = await fd[0].exclusive(ptr, npages);
    t.equal(r.cpages, npages);
    t.equal(firstMismatch(r.data, (i) => i), -1, 'what the device read');
    await mm.mprotect(ptr, size, PROT_READ);
    // Simulate a device writing system memory.
    await t.rejects(fd[0].write(ptr, npages, ints(npages, (i) => i)), { code: 'EPERM' });
  });
});
