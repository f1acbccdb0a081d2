// Several page request groups outstanding per device (PCIe PRI; the
// PriMailbox of src/shm/tlb_layout.ts): a fault that no prefetch in flight
// covers goes out in another group at once (workers/runtime/device_tlb.ts);
// each group's reply is voided per page by an invalidation served after
// its own post, whatever the order the groups are answered and installed
// in; a revoke's drain waits for every group posted before it, not for one
// posted later (src/kernel/page_request_order.ts).
import t from 'tap';
import { nextGroup, PageRequestOrder } from '../../src/kernel/page_request_order.js';
import { PAGE_SIZE } from '../../src/shm/constants.js';
import { allocLayout } from '../../src/shm/layout.js';
import { PageRequest, priGroup, PriMailbox, PRI_GROUPS } from '../../src/shm/tlb_layout.js';
import { stubTlb } from '../fixtures/stub_kernel.js';

t.test('a fault that the prefetch in flight does not cover goes out in another group at once', async (t) => {
  const k = stubTlb();
  const a = 64 * PAGE_SIZE;
  const b = 4096 * PAGE_SIZE;
  k.hold.add(a); // the kernel has not got to the prefetch yet
  t.ok(k.tlb.prefetch(a, 8, false), 'prefetch posted');
  const t0 = performance.now();
  t.equal(k.tlb.fault(b, 4, false), 0, 'the fault elsewhere is answered');
  t.ok(performance.now() - t0 < 1000, 'without waiting for the prefetch (its reply would never come)');
  t.same(k.log.map((r) => r.start), [b], 'only the fault was served');
  t.not(k.log[0].group, 0, 'in a group of its own (the prefetch holds group 0)');
  t.equal(Atomics.load(k.pri, PriMailbox.bell), 2, 'the bell carries the sequence of the request posted last');
  k.hold.clear();
  t.equal(k.tlb.fault(a + 3 * PAGE_SIZE, 1, false), 0);
  t.equal(k.tlb.prefetchHits, 1, 'the prefetch, answered later, served the fault in its range');
  t.same(k.log.map((r) => r.start), [b, a], 'no third request');
});

t.test('a fault whose page the prefetch in flight will not carry goes out at once', async (t) => {
  const k = stubTlb();
  const a = 64 * PAGE_SIZE;
  t.equal(k.tlb.fault(a, 8, false), 0);
  k.invalidate(a + 2 * PAGE_SIZE, a + 3 * PAGE_SIZE);
  k.invalidate(a + 4 * PAGE_SIZE, a + 5 * PAGE_SIZE);
  k.hold.add(a); // the kernel has not got to the prefetch: its reply would never come
  t.ok(k.tlb.prefetch(a, 8, false, true), 'a sparse prefetch of pages 2 and 4');
  k.invalidate(a + 4 * PAGE_SIZE, a + 5 * PAGE_SIZE); // page 4 again, after the post: its entry in that reply is void
  let t0 = performance.now();
  t.equal(k.tlb.fault(a + 4 * PAGE_SIZE, 1, false), 0, 'page 4 answered');
  t.ok(performance.now() - t0 < 1000, 'without waiting for the sparse prefetch');
  t.same(k.log.map((r) => r.start), [a, a + 4 * PAGE_SIZE]);

  const b = 4096 * PAGE_SIZE;
  k.hold.add(b);
  t.ok(k.tlb.prefetch(b, 8, false), 'a dense prefetch');
  k.invalidate(b + PAGE_SIZE, b + 2 * PAGE_SIZE); // its whole reply is void now
  t0 = performance.now();
  t.equal(k.tlb.fault(b + PAGE_SIZE, 1, false), 0, 'page 1 answered');
  t.ok(performance.now() - t0 < 1000, 'without waiting for the voided prefetch');
  t.equal(k.tlb.prefetchHits, 0, 'neither counted as a prefetch hit');
});

t.test('a fault of a window whose first page is held still asks for the rest', async (t) => {
  const k = stubTlb();
  const a = 64 * PAGE_SIZE;
  t.equal(k.tlb.fault(a, 1, false), 0);
  t.equal(k.tlb.fault(a, 4, false), 0);
  t.same(k.log.map((r) => r.start), [a, a], 'a second request (no prefetch answered for it)');
  t.ok([1, 2, 3].every((i) => k.tlb.usable(a / PAGE_SIZE + i, false)), 'pages 1-3 faulted in');
  t.equal(k.tlb.prefetchHits, 0, 'not counted as a prefetch hit');
});

t.test('prefetches leave a group for the fault', async (t) => {
  const k = stubTlb();
  k.hold.add(0);
  for (let i = 0; i < PRI_GROUPS; i++) k.hold.add((i + 1) * 1024 * PAGE_SIZE);
  let posted = 0;
  for (let i = 0; i < PRI_GROUPS; i++) if (k.tlb.prefetch((i + 1) * 1024 * PAGE_SIZE, 4, false)) posted++;
  t.equal(posted, PRI_GROUPS - 1, 'one group is kept free');
  t.notOk(k.tlb.prefetch(1024 * PAGE_SIZE, 4, false), 'a window already asked is not asked again');
  k.hold.clear();
  t.equal(k.tlb.fault(64 * PAGE_SIZE, 1, false), 0, 'the fault took the free group');
  t.equal(k.log.length, PRI_GROUPS, 'every request was answered');
  t.equal(k.tlb.collectAhead(), true, 'collected: groups free again');
  t.equal(k.tlb.size, (PRI_GROUPS - 1) * 4 + 1);
});

t.test('each group voids its own raced pages, whatever order the replies are installed in', async (t) => {
  const k = stubTlb();
  const w1 = 8192 * PAGE_SIZE;
  const w2 = 16384 * PAGE_SIZE;
  const v1 = w1 / PAGE_SIZE;
  t.equal(k.tlb.fault(w1, 32, false, true), 0, 'window 1 cold');
  for (const p of [4, 20]) k.invalidate(w1 + p * PAGE_SIZE, w1 + (p + 1) * PAGE_SIZE);
  k.setGen(2);
  k.hold.add(w1);
  t.ok(k.tlb.prefetch(w1, 32, false, true), 'the holes of window 1 asked ahead');
  // While the device waits for a fault in window 2 (a newer group), the
  // kernel answers the prefetch (its reply is computed), then the device
  // serves an invalidation of hole 4: the older group's reply for it is void.
  k.onCheck.push(() => {
    k.hold.delete(w1);
    k.serve();
    k.invalidate(w1 + 4 * PAGE_SIZE, w1 + 5 * PAGE_SIZE);
  });
  t.equal(k.tlb.fault(w2, 8, false, true), 0, 'window 2 faulted in another group');
  t.same(k.log.slice(1).map((r) => [r.start, r.asked.length]), [[w2, 8], [w1, 2]], 'the newer group was answered first; the prefetch asked the two holes only');
  t.equal(k.tlb.usable(w2 / PAGE_SIZE, false), true);
  t.equal(k.tlb.usable(v1 + 20, false), false, 'the older reply is not installed yet');
  t.equal(k.tlb.fault(w1 + 20 * PAGE_SIZE, 1, false, true), 0);
  t.equal(k.tlb.gen(v1 + 20), 2, 'hole 20 came from the older reply, installed after the newer one');
  t.equal(k.tlb.usable(v1 + 4, false), false, 'hole 4, invalidated after that reply was computed, was not installed from it');
  k.setGen(4);
  t.equal(k.tlb.fault(w1 + 4 * PAGE_SIZE, 1, false, true), 0);
  t.equal(k.tlb.gen(v1 + 4), 4, 'hole 4 refaulted from a reply made after its invalidation');
  t.equal(k.tlb.gen(v1 + 5), 1, 'a page held all along was never overwritten');
});

t.test("a drain waits for every group posted before it, not for one posted later", async (t) => {
  // A source with two groups: requests 1 and 2 posted when the drain starts.
  const answered = new Set<number>();
  let posted = 2;
  const src = {
    requestPending: () => [1, 2, 3].some((s) => s <= posted && !answered.has(s)),
    postedSeq: () => posted,
    pendingUpTo: (seq: number) => [1, 2, 3].some((s) => s <= seq && s <= posted && !answered.has(s)),
  };
  const order = new PageRequestOrder(10_000);
  order.add(src);
  let done = false;
  const drain = order.servePending();
  t.not(drain, null, 'requests are pending: a drain');
  const d = drain!.then(() => (done = true));
  await new Promise((r) => setImmediate(r));
  answered.add(2); // the later one first
  posted = 3; // a new request while draining
  await new Promise((r) => setImmediate(r));
  await new Promise((r) => setImmediate(r));
  t.notOk(done, 'request 1 is still unanswered: the drain goes on');
  answered.add(1);
  await d;
  t.ok(done && src.requestPending(), 'the drain ended with request 3 (posted after it began) still pending');
});

t.test('the kernel serves the groups a device waits for first, each kind in the order posted', async (t) => {
  const pri = allocLayout(PriMailbox);
  const groups = Array.from({ length: PRI_GROUPS }, (_, g) => priGroup(pri, g));
  const served = new Int32Array(PRI_GROUPS);
  const post = (g: number, seq: number, hint: number) => {
    groups[g][PageRequest.reqHint] = hint;
    Atomics.store(groups[g], PageRequest.reqSeq, seq);
  };
  t.equal(nextGroup(groups, served), -1, 'nothing posted');
  post(2, 1, 1); // a prefetch
  post(0, 2, 1); // another
  post(3, 3, 0); // the fault the device stalls on
  post(1, 4, 0); // a later wait (a second device TLB's, as a test posts it)
  const order: number[] = [];
  for (let g = nextGroup(groups, served); g >= 0; g = nextGroup(groups, served)) {
    order.push(g);
    served[g] = groups[g][PageRequest.reqSeq];
  }
  t.same(order, [3, 1, 2, 0], 'waits by sequence, then prefetches by sequence');
  post(2, 0x7ffffffe, 1); // a prefetch, oldest of all
  post(1, 0x7fffffff, 0); // a wait
  post(0, -0x80000000, 0); // a newer wait: the sequence wrapped (lowest index, lowest value)
  const wrapped: number[] = [];
  for (let g = nextGroup(groups, served); g >= 0; g = nextGroup(groups, served)) {
    wrapped.push(g);
    served[g] = groups[g][PageRequest.reqSeq];
  }
  t.same(wrapped, [1, 0, 2], 'across the wrap: the older wait, the newer, then the prefetch');
});
