// Port of tools/testing/selftests/mm/hmm-tests.c, FIXTURE(hmm), variant
// hmm_device_private: migration to device-private memory and back, with
// upstream's expectations (errno, cpages, data). The THP cases run at base
// page size where the case means something without THP (the range is one
// PMD, 512 pages, of 4 KiB pages); docs/kernel-map.md lists every case.
import t from 'tap';
import { PAGE_SIZE } from '../../src/shm/constants.js';
import { PROT_READ, PROT_WRITE } from '../../src/kernel/mm.js';
import { MIRROR_PROT } from '../../src/drivers/mirror_driver.js';
import { firstMismatch, HMM_BUFFER_PAGES, hmmMachine, hmmOpen, ints, NTIMES } from '../fixtures/hmm_selftests.js';

const RW = PROT_READ | PROT_WRITE;
const npages = HMM_BUFFER_PAGES;
const size = npages * PAGE_SIZE;
/** read_pmd_pagesize() on x86-64: 2 MiB. */
const PMD_PAGES = 512;

t.test('hmm (device private): migrate', async (t) => {
  const kernel = await hmmMachine(t);

  // Migrate anonymous memory to device private memory.
  t.test('migrate', async (t) => {
    const { mm, fd } = await hmmOpen(t, kernel, 1);
    const ptr = await mm.mmap({ length: size, prot: RW });
    await mm.write(ptr, ints(npages, (i) => i));
    const r = await fd[0].migrateToDev(ptr, npages);
    t.equal(r.cpages, npages);
    t.equal(firstMismatch(r.data, (i) => i), -1, 'what the device read');
  });

  // Migrate anonymous memory to device private memory and fault some of it back
  // to system memory, then try migrating the resulting mix of system and device
  // private memory to the device.
  t.test('migrate_fault', async (t) => {
    const { mm, fd } = await hmmOpen(t, kernel, 1);
    const ptr = await mm.mmap({ length: size, prot: RW });
    await mm.write(ptr, ints(npages, (i) => i));
    let r = await fd[0].migrateToDev(ptr, npages);
    t.equal(r.cpages, npages);
    t.equal(firstMismatch(r.data, (i) => i), -1);
    // Fault half the pages back to system memory and check them.
    t.equal(firstMismatch(await mm.read(ptr, size / 2), (i) => i), -1, 'CPU reads of the first half');
    r = await fd[0].migrateToDev(ptr, npages);
    t.equal(r.cpages, npages, 'the mix of system and device pages: all of them are the device\'s again');
    t.equal(firstMismatch(r.data, (i) => i), -1);
  });

  // Migrate, release the device memory (evicts every page), fault back.
  t.test('migrate_release', async (t) => {
    const { mm, fd } = await hmmOpen(t, kernel, 1);
    const ptr = await mm.mmap({ length: size, prot: RW });
    await mm.write(ptr, ints(npages, (i) => i));
    const r = await fd[0].migrateToDev(ptr, npages);
    t.equal(r.cpages, npages);
    t.equal(await fd[0].releaseDeviceMemory(), npages, 'HMM_DMIRROR_RELEASE evicted every page');
    t.equal(firstMismatch(await mm.read(ptr, size / 2), (i) => i), -1, 'faulted back and checked');
    t.same([...(await fd[0].snapshot(ptr, 2)).prot], [MIRROR_PROT.WRITE, MIRROR_PROT.WRITE], 'in system RAM');
  });

  // Migrate anonymous shared memory to device private memory.
  t.test('migrate_shared', async (t) => {
    const { mm, fd } = await hmmOpen(t, kernel, 1);
    const ptr = await mm.mmap({ length: size, prot: RW, kind: 'anon-shared' });
    await t.rejects(fd[0].migrateToDev(ptr, npages), { code: 'ENOENT' });
  });

  // Migrate anonymous memory to device memory and back to system memory
  // multiple times (private zone: through CPU faults).
  t.test('migrate_multiple', async (t) => {
    const { mm, fd } = await hmmOpen(t, kernel, 1);
    for (let c = 0; c < NTIMES; c++) {
      const ptr = await mm.mmap({ length: size, prot: RW });
      await mm.write(ptr, ints(npages, (i) => i));
      const r = await fd[0].migrateToDev(ptr, npages);
      t.equal(r.cpages, npages);
      t.equal(firstMismatch(r.data, (i) => i), -1, `pass ${c}: what the device read`);
      t.equal(firstMismatch(await mm.read(ptr, size), (i) => i), -1, `pass ${c}: migrated back by CPU faults`);
      await mm.munmap(ptr, size);
    }
  });

  // migrate_anon_huge_empty at base page size: a read-only range never touched
  // (pte_none) migrates as zero pages.
  t.test('migrate_anon_huge_empty (no THP)', async (t) => {
    const { mm, fd } = await hmmOpen(t, kernel, 1);
    const ptr = await mm.mmap({ length: PMD_PAGES * PAGE_SIZE, prot: PROT_READ });
    const r = await fd[0].migrateToDev(ptr, PMD_PAGES);
    t.equal(r.cpages, PMD_PAGES);
    t.equal(firstMismatch(r.data, () => 0), -1, 'what the device read');
  });

  // migrate_anon_huge_zero at base page size: the zero page migrates, then faults back as zeros.
  t.test('migrate_anon_huge_zero (no THP)', async (t) => {
    const { mm, fd } = await hmmOpen(t, kernel, 1);
    const ptr = await mm.mmap({ length: PMD_PAGES * PAGE_SIZE, prot: PROT_READ });
    t.equal(firstMismatch(await mm.read(ptr, 4), () => 0), -1, 'a read-only zero page');
    const r = await fd[0].migrateToDev(ptr, PMD_PAGES);
    t.equal(r.cpages, PMD_PAGES);
    t.equal(firstMismatch(r.data, () => 0), -1, 'what the device read');
    t.equal(firstMismatch(await mm.read(ptr, PMD_PAGES * PAGE_SIZE), () => 0), -1, 'faulted back: zeros');
  });

  // migrate_anon_huge_fault at base page size: migrate, snapshot (device private local), fault back.
  t.test('migrate_anon_huge_fault (no THP)', async (t) => {
    const { mm, fd } = await hmmOpen(t, kernel, 1);
    const ptr = await mm.mmap({ length: PMD_PAGES * PAGE_SIZE, prot: RW });
    await mm.write(ptr, ints(PMD_PAGES, (i) => i));
    const r = await fd[0].migrateToDev(ptr, PMD_PAGES);
    t.equal(r.cpages, PMD_PAGES);
    t.equal(firstMismatch(r.data, (i) => i), -1);
    const s = await fd[0].snapshot(ptr, PMD_PAGES);
    t.equal(s.cpages, PMD_PAGES);
    t.ok(s.prot.every((p) => p === (MIRROR_PROT.DEV_PRIVATE_LOCAL | MIRROR_PROT.WRITE)), 'every page device private local, writable (no PROT_PMD: no THP)');
    t.equal(firstMismatch(await mm.read(ptr, PMD_PAGES * PAGE_SIZE), (i) => i), -1, 'faulted back');
  });

  // Migrate memory and fault back to sysmem after partially unmapping (use_thp = 0).
  t.test('migrate_partial_unmap_fault (no THP)', async (t) => {
    const { mm, fd } = await hmmOpen(t, kernel, 1);
    const sz = PMD_PAGES * PAGE_SIZE;
    const unmapSize = sz / 2;
    for (const off of [0, sz / 4, sz / 2]) {
      const ptr = await mm.mmap({ length: sz, prot: RW });
      await mm.write(ptr, ints(PMD_PAGES, (i) => i));
      const r = await fd[0].migrateToDev(ptr, PMD_PAGES);
      t.equal(r.cpages, PMD_PAGES);
      t.equal(firstMismatch(r.data, (i) => i), -1);
      await mm.munmap(ptr + off, unmapSize);
      const before = await mm.read(ptr, off);
      const after = await mm.read(ptr + off + unmapSize, sz - off - unmapSize);
      t.equal(firstMismatch(before, (i) => i), -1, `offset ${off}: the pages before the hole faulted back`);
      t.equal(firstMismatch(after, (i) => i + (off + unmapSize) / 4), -1, `offset ${off}: the pages after the hole faulted back`);
      await mm.munmap(ptr, sz);
    }
    t.equal(fd[0].devmem.rmap.size, 0, 'no device page left behind by the partial unmaps');
  });
});
