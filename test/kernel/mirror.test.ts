// The mirror device (lib/test_hmm.c dmirror) beyond upstream's selftests (those
// are ported case by case in hmm_selftests_*.test.ts): the RFC's P2P view of a
// peer's private pages (snapshot REMOTE, reads through the owner's BAR) and its
// fall-back when P2P is refused, page-request counters, munmap during a READ
// with the safety checker on, error messages. One machine (two mirrors) for all.
import t from 'tap';
import { PeerVmaError } from '../../src/errors.js';
import { PAGE_SIZE } from '../../src/shm/constants.js';
import { MIRROR_PROT } from '../../src/drivers/mirror_driver.js';
import { PROT_NONE, PROT_READ, PROT_WRITE } from '../../src/kernel/mm.js';
import { allP2p, denyPairs } from '../../src/kernel/p2p_map.js';
import { kernelMachine, mirrorSpec, pattern, openMirrors, bytesEq } from '../fixtures/kernel_machine.js';

const RW = PROT_READ | PROT_WRITE;

t.test('mirror', async (t) => {
  const { kernel } = await kernelMachine(t, [mirrorSpec('m0'), mirrorSpec('m1')], { check: true, policy: allP2p });
  const mm = kernel.createMm();
  const [d0, d1] = await openMirrors(t, kernel, mm, ['m0', 'm1']);

  t.test('read anonymous memory written by the CPU; counters', async (t) => {
    const n = 16;
    const va = await mm.mmap({ length: n * PAGE_SIZE, prot: RW });
    const data = pattern(n * PAGE_SIZE, 1);
    await mm.write(va, data);
    const r = await d0.read(va, n);
    bytesEq(t, r.data, data, 'the device reads what the CPU wrote');
    t.equal(r.faults, 1, 'one dmirror_fault() call');
    t.equal(r.requests, 1, 'one page request: 16 pages fit the 64-page window');
    t.equal(r.pagesFaulted, n);
    t.equal(r.cpages, n);
    const again = await d0.read(va, n);
    t.equal(again.faults, 0, 'the second read hits the device TLB');
  });

  t.test('faults counts dmirror_fault() calls, requests count 64-page windows', async (t) => {
    const n = 200;
    const va = await mm.mmap({ length: n * PAGE_SIZE, prot: RW });
    await mm.write(va, pattern(n * PAGE_SIZE, 8));
    const r = await d0.read(va, n);
    bytesEq(t, r.data, pattern(n * PAGE_SIZE, 8));
    t.equal(r.faults, 1, 'one call faults the whole range');
    t.equal(r.requests, 4, '64 + 64 + 64 + 8 pages');
    await mm.madviseDontneed(va + 10 * PAGE_SIZE, PAGE_SIZE);
    const again = await d0.read(va, n);
    t.equal(again.faults, 1, 'one page refaulted after MADV_DONTNEED: one more call');
    t.equal(again.requests, 1, 'the call asks for the rest of the range in one window');
    t.equal(again.pagesFaulted, 64);
  });

  t.test('write anonymous memory from the device; the CPU sees it', async (t) => {
    const n = 8;
    const va = await mm.mmap({ length: n * PAGE_SIZE, prot: RW });
    const data = pattern(n * PAGE_SIZE, 2);
    const r = await d0.write(va, n, data);
    t.equal(r.faults, 1);
    bytesEq(t, await mm.read(va, n * PAGE_SIZE), data);
  });

  t.test('read of PROT_NONE memory fails with EFAULT', async (t) => {
    const va = await mm.mmap({ length: 4 * PAGE_SIZE, prot: PROT_NONE });
    await t.rejects(d0.read(va, 4), { code: 'EFAULT' });
  });

  t.test('write to read-only memory fails with EPERM; reading it works', async (t) => {
    const va = await mm.mmap({ length: 4 * PAGE_SIZE, prot: RW });
    await mm.write(va, pattern(4 * PAGE_SIZE, 3));
    await mm.mprotect(va, 4 * PAGE_SIZE, PROT_READ);
    await t.rejects(d0.write(va, 4, new Uint8Array(4 * PAGE_SIZE)), { code: 'EPERM' });
    bytesEq(t, (await d0.read(va, 4)).data, pattern(4 * PAGE_SIZE, 3));
  });

  t.test("a READ / WRITE whose page request the kernel refused: the device's page and errno, then the kernel's reason", async (t) => {
    const hex = (n: number) => `0x${n.toString(16)}`;
    const ro = await mm.mmap({ length: 4 * PAGE_SIZE, prot: PROT_READ });
    const w = await d0.write(ro + PAGE_SIZE, 2, new Uint8Array(2 * PAGE_SIZE)).then(() => null, (e: unknown) => e);
    const range = (va: number, n: number) => `\\[${hex(va)}, ${hex(va + n * PAGE_SIZE)}\\)`;
    t.match(w, { code: 'EPERM', message: new RegExp(`^EPERM: m0: m0: WRITE of ${hex(ro + PAGE_SIZE)} \\+2 pages failed at va ${hex(ro + PAGE_SIZE)}: EPERM; kernel: m0: page request ${range(ro + PAGE_SIZE, 2)} refused: EPERM: .*read-only`) });
    const none = await mm.mmap({ length: 4 * PAGE_SIZE, prot: PROT_NONE });
    const r = await d0.read(none, 4).then(() => null, (e: unknown) => e);
    t.match(r, { code: 'EFAULT', message: new RegExp(`failed at va ${hex(none)}: EFAULT; kernel: m0: page request ${range(none, 4)} refused: EFAULT`) });
    const unmapped = none + 64 * PAGE_SIZE;
    const u = await d0.read(unmapped, 1).then(() => null, (e: unknown) => e);
    t.match(u, { code: 'EFAULT', message: new RegExp(`failed at va ${hex(unmapped)}: EFAULT; kernel: m0: page request \\[${hex(unmapped)}, `) }, 'an unmapped range');
  });

  t.test('mprotect takes write access away from a device that had it', async (t) => {
    const va = await mm.mmap({ length: 2 * PAGE_SIZE, prot: RW });
    await d0.write(va, 2, new Uint8Array(2 * PAGE_SIZE).fill(9));
    await mm.mprotect(va, 2 * PAGE_SIZE, PROT_READ);
    await t.rejects(d0.write(va, 2, new Uint8Array(2 * PAGE_SIZE)), { code: 'EPERM' }, 'the cached writable entry was invalidated');
  });

  // The first page request faults pages 0..63 (fault window 64); the munmap
  // starts right after its reply and takes pages 32.., which the device
  // really holds in its TLB and is about to read.
  t.test('munmap while a mirror READ runs: the device never uses the unmapped pages', async (t) => {
    const n = 192;
    const va = await mm.mmap({ length: n * PAGE_SIZE, prot: RW });
    await mm.write(va, pattern(n * PAGE_SIZE, 4));
    const tlb0 = (await d0.counters()).tlb;
    let unmapped: Promise<void> | null = null;
    let faulted = 0;
    d0.onFault = (errno, start, npages) => {
      if (!unmapped && errno === 0 && start === va) {
        faulted = npages;
        unmapped = mm.munmap(va + 32 * PAGE_SIZE, (n - 32) * PAGE_SIZE);
      }
    };
    const before = d0.violations().count;
    await t.rejects(d0.read(va, n), { code: 'EFAULT' }, 'the READ reaches the hole and stops');
    d0.onFault = null;
    await unmapped;
    t.equal(faulted, 64, 'the unmapped pages 32..63 had been faulted in by the device');
    t.equal(d0.violations().count, before, 'no use after unmap (safety checker)');
    const c = await d0.counters();
    t.equal(c.tlb - tlb0, 32, 'the device TLB keeps pages 0..31 only: the invalidation dropped 32..63');
  });

  t.test('migrate to device memory; CPU touch migrates back; counters', async (t) => {
    const n = 8;
    const va = await mm.mmap({ length: n * PAGE_SIZE, prot: RW });
    const data = pattern(n * PAGE_SIZE, 5);
    await mm.write(va, data);
    t.equal((await d0.migrateToDev(va, n)).cpages, n, 'cpages');
    const snap = (await d0.snapshot(va, n)).prot;
    t.same([...snap], new Array(n).fill(MIRROR_PROT.DEV_PRIVATE_LOCAL | MIRROR_PROT.WRITE));
    const r = await d0.read(va, n);
    bytesEq(t, r.data, data, 'the owner reads its own private pages directly');
    t.equal(r.faults, 0, 'no fault: the migration installed the translations (dmirror_migrate_finalize_and_map)');
    bytesEq(t, await mm.read(va, PAGE_SIZE), data.subarray(0, PAGE_SIZE), 'CPU read migrates page 0 back');
    const snap2 = (await d0.snapshot(va, n)).prot;
    t.equal(snap2[0], MIRROR_PROT.WRITE);
    t.equal(snap2[1], MIRROR_PROT.DEV_PRIVATE_LOCAL | MIRROR_PROT.WRITE);
    t.equal((await d0.migrateToSys(va, n)).cpages, n - 1, 'the rest migrates back on request');
    bytesEq(t, await mm.read(va, n * PAGE_SIZE), data);
    t.equal(d0.violations().count, 0);
  });

  t.test('migrate over a hole fails with EINVAL', async (t) => {
    const va = await mm.mmap({ length: 3 * PAGE_SIZE, prot: RW });
    await mm.munmap(va + PAGE_SIZE, PAGE_SIZE);
    await t.rejects(d0.migrateToDev(va, 3), { code: 'EINVAL' });
  });

  t.test('a page private to m0 is seen by m1 as P2P when allowed', async (t) => {
    kernel.policy = allP2p;
    const n = 4;
    const va = await mm.mmap({ length: n * PAGE_SIZE, prot: RW });
    const data = pattern(n * PAGE_SIZE, 6);
    await mm.write(va, data);
    await d0.migrateToDev(va, n);
    t.same([...((await d1.snapshot(va, n)).prot)], new Array(n).fill(MIRROR_PROT.DEV_PRIVATE_REMOTE | MIRROR_PROT.WRITE), 'remote private');
    const r = await d1.read(va, n);
    bytesEq(t, r.data, data, 'm1 reads m0 memory through m0 BAR');
    t.same([...((await d0.snapshot(va, n)).prot)], new Array(n).fill(MIRROR_PROT.DEV_PRIVATE_LOCAL | MIRROR_PROT.WRITE), 'the pages stayed on m0');
    t.ok(kernel.bar('m0').mappedSlots >= n, 'owner BAR slots granted');
  });

  t.test('a page private to m0 migrates back when P2P is not allowed', async (t) => {
    kernel.policy = denyPairs([['m0', 'm1']]);
    t.teardown(() => void (kernel.policy = allP2p));
    const n = 4;
    const va = await mm.mmap({ length: n * PAGE_SIZE, prot: RW });
    const data = pattern(n * PAGE_SIZE, 7);
    await mm.write(va, data);
    await d0.migrateToDev(va, n);
    t.same([...((await d1.snapshot(va, n)).prot)], new Array(n).fill(MIRROR_PROT.NONE), 'not reachable: not present for m1');
    const r = await d1.read(va, n);
    bytesEq(t, r.data, data);
    t.same([...((await d0.snapshot(va, n)).prot)], new Array(n).fill(MIRROR_PROT.WRITE), 'the RFC fall-back: migrated back to system RAM');
  });

  t.test('snapshot flags of a mixed range', async (t) => {
    const va = await mm.mmap({ length: 6 * PAGE_SIZE, prot: RW });
    await mm.write(va, new Uint8Array(PAGE_SIZE).fill(1)); // page 0: written RAM
    await mm.read(va + PAGE_SIZE, 1); // page 1: zero page
    await mm.write(va + 2 * PAGE_SIZE, new Uint8Array(2 * PAGE_SIZE).fill(2)); // pages 2, 3
    await mm.mprotect(va + 3 * PAGE_SIZE, PAGE_SIZE, PROT_READ); // page 3 read-only
    await d1.migrateToDev(va + 4 * PAGE_SIZE, 1); // page 4: private to m1
    await mm.mprotect(va + 5 * PAGE_SIZE, PAGE_SIZE, PROT_NONE); // page 5: no access
    const s = (await d0.snapshot(va, 6)).prot;
    t.same([...s], [MIRROR_PROT.WRITE, MIRROR_PROT.ZERO | MIRROR_PROT.READ, MIRROR_PROT.WRITE, MIRROR_PROT.READ, MIRROR_PROT.DEV_PRIVATE_REMOTE | MIRROR_PROT.WRITE, MIRROR_PROT.ERROR]);
    const un = await mm.mmap({ length: PAGE_SIZE, prot: RW });
    t.same([...((await d0.snapshot(un, 1)).prot)], [MIRROR_PROT.NONE], 'untouched: none');
  });

  t.test('errors name the object', async (t) => {
    const va = await mm.mmap({ length: PAGE_SIZE, prot: PROT_NONE });
    const e = await d0.read(va, 1).catch((x: unknown) => x);
    t.ok(e instanceof PeerVmaError);
    t.match((e as PeerVmaError).message, /m0/);
  });
});
