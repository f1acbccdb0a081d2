// Driver-installed translations at migration (lib/test_hmm.c's
// dmirror_migrate_finalize_and_map; src/drivers/migrate_map.ts): after
// HMM_DMIRROR_MIGRATE_TO_DEV the device reads the range from its own table
// without a page request (upstream's dmirror_do_read after the migration
// finds every entry), an invalidation that races the driver's post voids
// it, and one after the post drops what it installed.
import t from 'tap';
import { PAGE_SIZE } from '../../src/shm/constants.js';
import { PROT_READ, PROT_WRITE } from '../../src/kernel/mm.js';
import { DriverMap, freeMapSlots, MAP_PAGES, MAP_SLOTS } from '../../src/shm/driver_map_layout.js';
import { firstMismatch, hmmMachine, hmmOpen, ints } from '../fixtures/hmm_selftests.js';

const RW = PROT_READ | PROT_WRITE;
const npages = 256;
const size = npages * PAGE_SIZE;

t.test('hmm migrate map', async (t) => {
  const kernel = await hmmMachine(t);

  // Port of hmm-tests.c migrate + the device read dmirror_migrate_to_device does after it.
  t.test('migrate, then a device read makes no page request', async (t) => {
    const { mm, fd } = await hmmOpen(t, kernel, 1);
    const ptr = await mm.mmap({ length: size, prot: RW });
    await mm.write(ptr, ints(npages, (i) => i));
    t.equal((await fd[0].migrateToDev(ptr, npages)).cpages, npages);
    const r = await fd[0].read(ptr, npages);
    t.equal(r.cpages, npages);
    t.equal(firstMismatch(r.data!, (i) => i), -1, 'the device read its own pages');
    t.equal(r.faults, 0, 'no dmirror_fault() call');
    t.equal(r.requests, 0, 'no page request');
    // A device write through the installed (writable) entries lands in device memory; the CPU sees it.
    const w = await fd[0].write(ptr, 1, ints(1, (i) => ~i));
    t.equal(w.requests, 0, 'the installed entries are writable');
    t.equal(firstMismatch(await mm.read(ptr, PAGE_SIZE), (i) => ~i), -1, 'CPU reads the device write (migrated back)');
    t.equal(fd[0].violations().count, 0);
  });

  // dmirror_migrate_to_device() maps chunk by chunk; a driver that migrates the next chunk while the device
  // has not looked at its table yet (a pipeline) must not lose the earlier chunk's post (one slot did).
  t.test('migrations back to back: every chunk is installed, no page request', async (t) => {
    const { mm, fd } = await hmmOpen(t, kernel, 1);
    const ptr = await mm.mmap({ length: size, prot: RW });
    await mm.write(ptr, ints(npages, (i) => i * 5));
    const chunks = 4;
    const per = npages / chunks;
    for (let c = 0; c < chunks; c++) t.equal((await fd[0].migrateToDev(ptr + c * per * PAGE_SIZE, per)).cpages, per);
    const r = await fd[0].read(ptr, npages);
    t.equal(firstMismatch(r.data!, (i) => i * 5), -1);
    t.equal(r.requests, 0, 'no page request: all four posts were installed');
    t.equal(fd[0].violations().count, 0);
  });

  t.test('more posts than slots: the ones past the ring fault, the data is right', async (t) => {
    const { mm, fd } = await hmmOpen(t, kernel, 1);
    const ptr = await mm.mmap({ length: size, prot: RW });
    await mm.write(ptr, ints(npages, (i) => i ^ 0x33));
    const chunks = 8;
    const per = npages / chunks;
    for (let c = 0; c < chunks; c++) t.equal((await fd[0].migrateToDev(ptr + c * per * PAGE_SIZE, per)).cpages, per);
    const r = await fd[0].read(ptr, npages);
    t.equal(firstMismatch(r.data!, (i) => i ^ 0x33), -1);
    t.equal(r.pagesFaulted, (chunks - MAP_SLOTS) * per, 'the chunks past MAP_SLOTS posts were faulted in');
    t.equal(fd[0].violations().count, 0);
  });

  // One migration of more than MAP_PAGES pages: its post fills consecutive slots (one slot would fault the rest).
  t.test('a post spanning several slots: all of it installed, no page request', async (t) => {
    const { mm, fd } = await hmmOpen(t, kernel, 1);
    const big = MAP_PAGES + 256;
    const ptr = await mm.mmap({ length: big * PAGE_SIZE, prot: RW });
    await mm.write(ptr, ints(big, (i) => i * 3 + 1));
    t.equal((await fd[0].migrateToDev(ptr, big)).cpages, big);
    const r = await fd[0].read(ptr, big);
    t.equal(firstMismatch(r.data!, (i) => i * 3 + 1), -1);
    t.equal(r.requests, 0, `no page request: the ${big}-page post took two slots`);
    t.equal(fd[0].violations().count, 0);
  });

  // The ring has fewer free slots than the span needs: the post takes the free ones, the pages past them fault.
  t.test('a partial post: the pages past the free slots fault, the data is right', async (t) => {
    const { mm, fd } = await hmmOpen(t, kernel, 1);
    const small = 16;
    const big = MAP_PAGES + 256;
    const total = (MAP_SLOTS - 1) * small + big;
    const ptr = await mm.mmap({ length: total * PAGE_SIZE, prot: RW });
    await mm.write(ptr, ints(total, (i) => i ^ 0x5a5a));
    for (let c = 0; c < MAP_SLOTS - 1; c++) t.equal((await fd[0].migrateToDev(ptr + c * small * PAGE_SIZE, small)).cpages, small);
    t.equal((await fd[0].migrateToDev(ptr + (MAP_SLOTS - 1) * small * PAGE_SIZE, big)).cpages, big, 'one slot left for a two-slot span');
    const r = await fd[0].read(ptr, total);
    t.equal(firstMismatch(r.data!, (i) => i ^ 0x5a5a), -1);
    t.equal(r.pagesFaulted, big - MAP_PAGES, 'only the pages past the one free slot were faulted in');
    t.equal(fd[0].violations().count, 0);
  });

  // Several slots pending when a revoke of one chunk comes: the device installs them all, then drops that chunk only.
  t.test('an invalidation while several slots are pending drops only its chunk', async (t) => {
    const { mm, fd } = await hmmOpen(t, kernel, 1);
    const ptr = await mm.mmap({ length: size, prot: RW });
    await mm.write(ptr, ints(npages, (i) => i + 11));
    const per = npages / MAP_SLOTS;
    for (let c = 0; c < MAP_SLOTS; c++) t.equal((await fd[0].migrateToDev(ptr + c * per * PAGE_SIZE, per)).cpages, per);
    await mm.revokeRange(ptr + per * PAGE_SIZE, ptr + 2 * per * PAGE_SIZE, null);
    const r = await fd[0].read(ptr, npages);
    t.equal(firstMismatch(r.data!, (i) => i + 11), -1);
    t.equal(r.pagesFaulted, per, 'chunk 1 refaulted, chunks 0, 2 and 3 read from the posts');
    t.equal(fd[0].violations().count, 0);
  });

  // doneSeq is written by the device: a value the driver did not post (ahead of postSeq, or further behind than
  // the ring) must not make the driver count more slots than the ring has, nor fewer than none.
  t.test('freeMapSlots clamps a device-written doneSeq to [0, MAP_SLOTS]', async (t) => {
    const m = new Int32Array(DriverMap.kFieldCount);
    const at = (post: number, done: number) => ((m[DriverMap.postSeq] = post), (m[DriverMap.doneSeq] = done), freeMapSlots(m));
    t.equal(at(5, 5), MAP_SLOTS, 'nothing pending');
    t.equal(at(5, 3), MAP_SLOTS - 2);
    t.equal(at(5, 9), MAP_SLOTS, 'doneSeq past postSeq: not more than the ring');
    t.equal(at(50, 3), 0, 'doneSeq far behind: none, not a negative count');
    t.equal(at(-0x80000000 + 1, 0x7fffffff), MAP_SLOTS - 2, 'the sequence wraps');
  });

  t.test('an invalidation racing the post leaves no installed entry', async (t) => {
    const { mm, fd } = await hmmOpen(t, kernel, 1);
    const ptr = await mm.mmap({ length: size, prot: RW });
    await mm.write(ptr, ints(npages, (i) => 3 * i));
    let raced = 0;
    // Between the post's readBegin and its driver lock: a revoke of half the range (no mmap_lock: the migration holds it).
    fd[0].beforeMapLock = async () => {
      raced++;
      await mm.revokeRange(ptr, ptr + size / 2, null);
    };
    t.equal((await fd[0].migrateToDev(ptr, npages)).cpages, npages);
    fd[0].beforeMapLock = null;
    t.equal(raced, 1, 'the race ran inside the migration');
    const r = await fd[0].read(ptr, npages);
    t.equal(firstMismatch(r.data!, (i) => 3 * i), -1);
    t.ok(r.requests > 0, `the device faulted the range in (${r.requests} page requests): the post was void`);
    t.equal(r.pagesFaulted, npages, 'every page, not only the revoked half: the whole post is void');
    t.equal(fd[0].violations().count, 0);
  });

  t.test('an invalidation after the post drops what it installed', async (t) => {
    const { mm, fd } = await hmmOpen(t, kernel, 1);
    const ptr = await mm.mmap({ length: size, prot: RW });
    await mm.write(ptr, ints(npages, (i) => i + 7));
    t.equal((await fd[0].migrateToDev(ptr, npages)).cpages, npages);
    // The device has not looked at its table yet: the post is still in the mailbox when this revoke reaches it.
    await mm.revokeRange(ptr, ptr + size, null);
    const r = await fd[0].read(ptr, npages);
    t.equal(firstMismatch(r.data!, (i) => i + 7), -1);
    t.equal(r.pagesFaulted, npages, 'every page refaulted: the revoke dropped the installed entries');
    t.equal(fd[0].violations().count, 0);
  });

  t.test('migrated back: the device does not keep the installed entries', async (t) => {
    const { mm, fd } = await hmmOpen(t, kernel, 1);
    const ptr = await mm.mmap({ length: size, prot: RW });
    await mm.write(ptr, ints(npages, (i) => i ^ 0x55));
    t.equal((await fd[0].migrateToDev(ptr, npages)).cpages, npages);
    // Our own migration back: the driver must flush us (it recorded the posted range as translated).
    t.equal((await fd[0].migrateToSys(ptr, npages)).cpages, npages);
    await mm.write(ptr, ints(npages, (i) => i ^ 0xaa));
    const r = await fd[0].read(ptr, npages);
    t.equal(firstMismatch(r.data!, (i) => i ^ 0xaa), -1, 'the device reads the CPU write in RAM, not its freed pages');
    t.equal(r.pagesFaulted, npages);
    t.equal(fd[0].violations().count, 0, 'no stale use of a freed device page');
  });
});
