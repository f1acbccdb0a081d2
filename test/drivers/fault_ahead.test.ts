// The streaming data path by VA (workers/runtime/{va_space,device_tlb}.ts):
// fault-ahead along a stream (the next window is asked for while the
// current one is copied), the typed-array device TLB, and what an
// invalidation of a prefetched window does (the reply is not installed:
// the device asks again) — the data stays bit-exact and the safety checker
// sees nothing.
import t from 'tap';
import { BarExporter } from '../../src/drivers/bar_exporter.js';
import { PAGE_SIZE } from '../../src/shm/constants.js';
import { DeviceStats } from '../../src/shm/device_ctl.js';
import { FAULT_WINDOW } from '../../src/shm/tlb_layout.js';
import { stubTlb } from '../fixtures/stub_kernel.js';
import { nicImport } from '../fixtures/nic_import.js';
import { MiB, pattern } from '../fixtures/kernel_machine.js';

const WINDOW = FAULT_WINDOW * PAGE_SIZE;

t.test('DeviceTlb fault-ahead against a stub kernel', async (t) => {
  const k = stubTlb();
  const va = 64 * PAGE_SIZE;
  k.hold.add(va + 8 * PAGE_SIZE); // the kernel has not got to the second prefetch
  t.ok(k.tlb.prefetch(va, 8, false), 'a prefetch posted');
  t.ok(k.tlb.prefetch(va + 8 * PAGE_SIZE, 8, false), 'the next window posted too, in a group of its own');
  t.equal(k.tlb.fault(va + 3 * PAGE_SIZE, 1, false), 0, 'a fault inside the prefetched range');
  t.same(k.log.map((r) => r.start), [va], 'was answered by the prefetch (no request of its own; the second prefetch, unanswered, did not hold it up)');
  t.equal(k.tlb.prefetchHits, 1);
  t.equal(k.tlb.size, 8);
  t.same(k.tlb.lookup(va / PAGE_SIZE + 7), { devAddr: 0x4000_0000 + va + 7 * PAGE_SIZE, flags: 1, gen: 1, mem: 0, page: va / PAGE_SIZE + 7 });
  t.equal(k.tlb.runPages(va / PAGE_SIZE, 100, false), 8, 'the eight entries are one run');

  // A prefetched reply computed before an invalidation of its range that the
  // device served must not be installed: the device asks again.
  const va2 = 1024 * PAGE_SIZE;
  k.tlb.prefetch(va2, 4, false);
  k.serve(); // the kernel answers with generation 1 ...
  k.invalidate(va2, va2 + PAGE_SIZE); // ... then the range is invalidated before the device looks at the reply
  k.setGen(2);
  t.equal(k.tlb.fault(va2, 4, false), 0);
  t.equal(k.tlb.retries, 1, 'the raced reply counted as a retry');
  t.equal(k.tlb.prefetchHits, 1, 'and not as a hit');
  t.equal(k.tlb.gen(va2 / PAGE_SIZE), 2, 'the entries come from the second reply, not the raced one');

  // An invalidation drops entries; the next install of one counts as a refault.
  k.invalidate(va, va + 2 * PAGE_SIZE);
  t.equal(k.tlb.usable(va / PAGE_SIZE, false), false);
  t.equal(k.tlb.usable(va / PAGE_SIZE + 2, false), true);
  t.equal(k.tlb.runPages(va / PAGE_SIZE + 2, 100, false), 6);
  t.equal(k.tlb.fault(va, 2, false), 0);
  t.equal(k.tlb.size, 12);
  t.equal(k.stats[DeviceStats.pagesRefaulted], 2, 'the two dropped pages were refaulted');
});

t.test('fault-ahead', async (t) => {
  const span = 4 * WINDOW;
  const { machine, kernel, mm, ex, bind, nic, stream } = await nicImport(t, span, [{ name: 'acc1', kind: 'accelerator', memBytes: span, barBytes: 600 * PAGE_SIZE, props: {} }]);
  const local = () => nic.shm.mem!.subarray(0, span);

  t.test('a cold stream asks for each window once, the later ones ahead, and reads every byte', async (t) => {
    const { va, vma } = await ex.mmap(mm, span / PAGE_SIZE);
    const data = pattern(span, 21);
    ex.fill(vma, 0, data);
    const r = await stream({ va, len: span, cmdBytes: 256 * 1024 });
    t.equal(r.faults, 4, 'one page request per window');
    t.equal(r.pagesFaulted, span / PAGE_SIZE);
    t.equal(r.retries, 0, 'nothing raced the requests');
    t.equal(r.prefetchHits, 3, 'every window after the first was already asked for');
    t.ok(Buffer.from(local()).equals(Buffer.from(data)), 'bytes equal');
    const warm = await stream({ va, len: span, cmdBytes: 256 * 1024 });
    t.equal(warm.faults, 0, 'a warm pass faults nothing');
    t.equal(bind.violations().count, 0);
    await mm.munmap(va, span);
  });

  t.test('back at a buffer taken back whole, the refault asks ahead too; scattered holes are refaulted on demand', async (t) => {
    const { va, vma } = await ex.mmap(mm, span / PAGE_SIZE);
    const data = pattern(span, 25);
    ex.fill(vma, 0, data);
    await stream({ va, len: span, cmdBytes: 256 * 1024 });
    await mm.revokeRange(va, va + span, null); // as when the exporter recycles the buffer's BAR slots
    const r = await stream({ va, len: span, cmdBytes: 256 * 1024 });
    t.equal(r.faults, 4, 'one page request per window');
    t.equal(r.prefetchHits, 3, 'each window after a window-long hole was asked for ahead');
    t.ok(Buffer.from(local()).equals(Buffer.from(data)), 'bytes equal');
    // One page in 64 revoked: a storm's scattered holes, not a recycled buffer.
    await Promise.all(Array.from({ length: span / PAGE_SIZE / 64 }, (_, k) => mm.revokeRange(va + k * 64 * PAGE_SIZE, va + (k * 64 + 1) * PAGE_SIZE, null)));
    const s = await stream({ va, len: span, cmdBytes: 256 * 1024 });
    t.equal(s.faults, 1, 'one page request took every scattered hole');
    t.equal(s.prefetchHits, 1, 'no window asked for ahead: the one request went out when the first hole was met and copied past (workers/runtime/hole_skip.ts), and was collected when the command came back for it');
    t.ok(Buffer.from(local()).equals(Buffer.from(data)), 'bytes equal');
    t.equal(bind.violations().count, 0);
    await mm.munmap(va, span);
  });

  t.test('a hole that cannot be faulted in fails the read after the pages past it were copied; the error names the hole', async (t) => {
    const { va, vma } = await ex.mmap(mm, span / PAGE_SIZE);
    ex.fill(vma, 0, pattern(span, 26));
    await stream({ va, len: span, cmdBytes: 256 * 1024 });
    const hole = va + 3 * PAGE_SIZE;
    await ex.revokeAccess(vma, hole, hole + PAGE_SIZE); // dma-buf-style revocation: the page's fault fails ENODEV
    local().fill(0);
    await t.rejects(stream({ va, len: 256 * 1024, cmdBytes: 256 * 1024 }), new RegExp(`read of va \\[0x${va.toString(16)}, 0x${(va + 256 * 1024).toString(16)}\\) failed at va 0x${hole.toString(16)}: ENODEV`));
    t.ok(local().subarray(4 * PAGE_SIZE, 5 * PAGE_SIZE).some((b) => b !== 0), 'the pages past the hole were copied before the command came back for it');
    t.equal(bind.violations().count, 0);
    await ex.restoreAccess(vma, hole, hole + PAGE_SIZE);
    await mm.munmap(va, span);
  });

  t.test('windows revoked as soon as they are answered: still bit-exact, no violation', async (t) => {
    const { va, vma } = await ex.mmap(mm, span / PAGE_SIZE);
    const data = pattern(span, 22);
    ex.fill(vma, 0, data);
    // Each answered request of a later window is revoked at once, while the
    // device copies the window before it: the revoke lands while the reply
    // sits in the mailbox (not installed: asked again), after it was
    // installed (the entries die and are faulted again), or after the
    // window was copied. Which one is timing; the bytes and the checker's
    // verdict are not (the raced-reply case alone is tested above, against
    // the stub kernel).
    const revoked: Promise<void>[] = [];
    bind.onFault = (errno, start, npages) => {
      if (errno === 0 && start > va && revoked.length < 3) revoked.push(mm.revokeRange(start, start + npages * PAGE_SIZE, null));
    };
    const r = await stream({ va, len: span, cmdBytes: 256 * 1024 });
    bind.onFault = null;
    await Promise.all(revoked);
    t.equal(revoked.length, 3, 'three windows were revoked');
    t.ok(r.faults >= 4, `every window was faulted in (faults ${r.faults}, retries ${r.retries}, refaults ${r.refaults})`);
    t.ok(Buffer.from(local()).equals(Buffer.from(data)), 'bytes equal');
    t.equal(bind.violations().count, 0, 'the safety checker saw no stale use');
    await mm.munmap(va, span);
  });

  t.test('a BAR window smaller than two fault windows: fault-ahead cannot evict the window in use for good', async (t) => {
    // acc1's BAR2 has 600 slots: a prefetched window can only be mapped by
    // recycling the slots of the window being copied (held by nic0, so
    // nic0 is invalidated). The stream must still finish, bit-exact.
    const ex1 = new BarExporter(kernel, 'acc1');
    const { va, vma } = await ex1.mmap(mm, span / PAGE_SIZE);
    const data = pattern(span, 24);
    ex1.fill(vma, 0, data);
    const r = await stream({ va, len: span, cmdBytes: 256 * 1024 });
    t.ok(Buffer.from(local()).equals(Buffer.from(data)), 'bytes equal');
    t.ok(r.refaults < 16, `a few runs redone, not a livelock (refaults ${r.refaults}, faults ${r.faults}, prefetch hits ${r.prefetchHits})`);
    t.equal(bind.violations().count, 0);
    await mm.munmap(va, span);
  });

  t.test('scattered backing: one run per page, gathered in one chunk, still bit-exact, checked page by page', async (t) => {
    const n = span / PAGE_SIZE;
    const ext = machine.device('acc0').mem!.allocContig(n);
    const pages = Array.from({ length: n }, (_, i) => ext.start + ((i * 7919) % n));
    const { va, vma } = await ex.mmap(mm, n, pages);
    const data = pattern(span, 23);
    ex.fill(vma, 0, data);
    await stream({ va, len: span, cmdBytes: 1 * MiB });
    t.ok(Buffer.from(local()).equals(Buffer.from(data)), 'bytes equal');
    t.equal(bind.violations().count, 0);
    await mm.munmap(va, span);
  });
});
