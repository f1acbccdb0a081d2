// Sparse page requests (a PCIe PRI page request group): after a revoke
// punches holes in a window the device holds, its request names only the
// holes (workers/runtime/device_tlb.ts, the mailbox mask of
// src/shm/tlb_layout.ts), the kernel maps only those
// (src/drivers/importer_binding.ts), the device installs only those, and an
// invalidation of a page the request did not ask for does not make its
// reply unusable. Then the end to end case: a stream through refaulted
// holes stays bit-exact, with the safety checker on, and the holes of the
// next windows are asked for ahead (refault ahead, workers/runtime/va_space.ts).
import t from 'tap';
import { PAGE_SIZE } from '../../src/shm/constants.js';
import { SPARSE_SPAN } from '../../src/shm/tlb_layout.js';
import { stubTlb } from '../fixtures/stub_kernel.js';
import { nicImport } from '../fixtures/nic_import.js';
import { pattern } from '../fixtures/kernel_machine.js';

t.test('a sparse request after a sparse revoke names only the revoked pages, and installs only them', async (t) => {
  const k = stubTlb();
  const va = 256 * PAGE_SIZE;
  const v0 = va / PAGE_SIZE;
  t.equal(k.tlb.fault(va, 64, false, true), 0);
  t.same(k.log[0].asked.length, 64, 'a cold window asks for every page');
  for (const p of [5, 20, 40]) k.invalidate(va + p * PAGE_SIZE, va + (p + 1) * PAGE_SIZE);
  k.setGen(2);
  t.equal(k.tlb.fault(va + 5 * PAGE_SIZE, 36, false, true), 0);
  t.same(k.log[1].asked, [0, 15, 35], 'the request names pages 5, 20 and 40 only');
  t.equal(k.tlb.gen(v0 + 20), 2, 'a hole was installed from the reply');
  t.equal(k.tlb.gen(v0 + 21), 1, 'a page still held was not overwritten by the reply');
  t.equal(k.tlb.pagesFaulted, 64 + 3, 'three pages counted as faulted');
  t.equal(k.tlb.size, 64);

  // The dense request (the default, other callers) still asks for every page.
  k.invalidate(va, va + PAGE_SIZE);
  t.equal(k.tlb.fault(va, 8, false), 0);
  t.same(k.log[2].asked.length, 8, 'a dense request asks for every page');
});

t.test('an invalidation of a page a sparse request did not ask for leaves its reply usable; one of an asked page does not', async (t) => {
  const k = stubTlb();
  const va = 1024 * PAGE_SIZE;
  t.equal(k.tlb.fault(va, 32, false, true), 0);
  k.invalidate(va + 4 * PAGE_SIZE, va + 5 * PAGE_SIZE);
  k.tlb.prefetch(va, 32, false, true); // asks for page 4 only
  k.serve();
  k.invalidate(va + 10 * PAGE_SIZE, va + 11 * PAGE_SIZE); // a held page, not asked
  t.equal(k.tlb.fault(va + 4 * PAGE_SIZE, 1, false, true), 0);
  t.equal(k.tlb.retries, 0, 'no retry');
  t.equal(k.tlb.prefetchHits, 1, 'the prefetched reply was used');
  t.equal(k.tlb.usable(va / PAGE_SIZE + 10, false), false, 'the page invalidated meanwhile stays dropped (not installed from the reply)');

  k.tlb.prefetch(va + 10 * PAGE_SIZE, 1, false, true);
  k.serve();
  k.invalidate(va + 10 * PAGE_SIZE, va + 11 * PAGE_SIZE); // the asked page
  k.setGen(3);
  t.equal(k.tlb.fault(va + 10 * PAGE_SIZE, 1, false, true), 0);
  t.equal(k.tlb.retries, 1, 'the raced reply was not installed: asked again');
  t.equal(k.tlb.gen(va / PAGE_SIZE + 10), 3);
});

t.test('an asked page invalidated while its sparse request is in flight is left out of the install; the other asked pages go in', async (t) => {
  const k = stubTlb();
  const va = 2048 * PAGE_SIZE;
  const v0 = va / PAGE_SIZE;
  t.equal(k.tlb.fault(va, 32, false, true), 0);
  for (const p of [4, 10]) k.invalidate(va + p * PAGE_SIZE, va + (p + 1) * PAGE_SIZE);
  k.setGen(5);
  k.tlb.prefetch(va + 4 * PAGE_SIZE, 7, false, true); // asks pages 4 and 10
  k.serve();
  k.invalidate(va + 4 * PAGE_SIZE, va + 5 * PAGE_SIZE); // page 4 again, after the reply was computed
  t.equal(k.tlb.fault(va + 10 * PAGE_SIZE, 1, false, true), 0);
  t.equal(k.tlb.prefetchHits, 1, 'page 10 came from the reply in flight');
  t.equal(k.tlb.gen(v0 + 10), 5);
  t.equal(k.tlb.usable(v0 + 4, false), false, 'page 4, invalidated in flight, was not installed from it');
  t.equal(k.tlb.retries, 0);
  k.setGen(6);
  t.equal(k.tlb.fault(va + 4 * PAGE_SIZE, 1, false, true), 0);
  t.equal(k.tlb.gen(v0 + 4), 6, 'page 4 refaulted from a reply made after its invalidation');
});

t.test('through the kernel: holes are mapped alone, asked ahead, and read bit-exact', async (t) => {
  const span = 2 * SPARSE_SPAN * PAGE_SIZE; // two sparse windows: the second one's holes are asked ahead
  const { mm, ex, bind, nic, stream } = await nicImport(t, span);
  const { va, vma } = await ex.mmap(mm, span / PAGE_SIZE);
  ex.fill(vma, 0, pattern(span, 31));
  await stream({ va, len: span, cmdBytes: 256 * 1024 });

  // Revoke scattered pages in every window, then change the data behind them (a revoke swaps in a fresh page).
  const holes: number[] = [];
  for (let p = 3; p < span / PAGE_SIZE; p += 37) holes.push(p);
  for (const p of holes) await mm.revokeRange(va + p * PAGE_SIZE, va + (p + 1) * PAGE_SIZE, null);
  const data = pattern(span, 32);
  ex.fill(vma, 0, data);
  const mapped0 = ex.barManager.stats.mappedPages;
  const r = await stream({ va, len: span, cmdBytes: 256 * 1024 });
  t.equal(r.pagesFaulted, holes.length, `the device installed the ${holes.length} holes only`);
  t.equal(ex.barManager.stats.mappedPages - mapped0, holes.length, 'the exporter mapped the holes only');
  t.ok(r.prefetchHits > 0, `holes of later windows were asked ahead (${r.faults} requests, ${r.prefetchHits} answered ahead)`);
  const local = nic.shm.mem!.subarray(0, span);
  t.ok(Buffer.from(local).equals(Buffer.from(data)), 'bytes equal through the refaulted holes');
  t.equal(bind.violations().count, 0, 'the safety checker saw no stale use');

  // A hole refaulted into the hold that covers it is released like any page of it: revoking it again leaves its slot unheld, its neighbour held.
  const bar = ex.barManager;
  const h = holes[1];
  t.equal(bar.holdersOf(ex.pageOf(vma, h)), 1, 'the refaulted hole is held once');
  await mm.revokeRange(va + h * PAGE_SIZE, va + (h + 1) * PAGE_SIZE, null);
  t.equal(bar.holdersOf(ex.pageOf(vma, h)), 0, 'revoked again: released');
  t.equal(bar.holdersOf(ex.pageOf(vma, h + 1)), 1, 'its neighbour is still held once');
  await mm.munmap(va, span);
});
