// Copy past a hole, come back for it (workers/runtime/hole_skip.ts): a read
// command that meets a hole with usable pages after it asks for the hole
// (one page request group) and skips it; a hole that runs to the end of the
// command, or one no request in flight will bring while this command's one
// request is spent, is faulted at once. The end to end read through holes
// (bit-exact, safety checker on) is test/drivers/sparse_page_request.test.ts.
import t from 'tap';
import { PAGE_SIZE } from '../../src/shm/constants.js';
import { Holes, skipHole } from '../../workers/runtime/hole_skip.js';
import { stubTlb } from '../fixtures/stub_kernel.js';

/** A window of `n` held pages at `v0`, then `holes` (page offsets) revoked. */
function heldWithHoles(n: number, holes: readonly number[]) {
  const k = stubTlb();
  const v0 = 512;
  k.tlb.fault(v0 * PAGE_SIZE, n, false, true);
  for (const h of holes) k.invalidate((v0 + h) * PAGE_SIZE, (v0 + h + 1) * PAGE_SIZE);
  // What VaSpace.missingSpan gives: up to the last unusable page of the cap.
  const span = (v: number, cap: number): number => {
    let m = 1;
    for (let i = 1; i < cap; i++) if (!k.tlb.usable(v + i, false)) m = i + 1;
    return m;
  };
  return { k, v0, span };
}

t.test('a hole with usable pages after it is asked for and skipped; later holes of the same window ride on that request', async (t) => {
  const { k, v0, span } = heldWithHoles(64, [4, 5, 20]);
  const holes = new Holes();
  const asked = k.log.length;
  t.equal(skipHole(k.tlb, holes, v0 + 4, v0 + 64, v0 + 64, span), 2, 'the two-page hole is skipped');
  k.serve();
  t.same(k.log[asked].asked, [0, 1, 16], 'one request names every hole of the window');
  t.equal(k.tlb.awaiting((v0 + 20) * PAGE_SIZE), true, 'the later hole is awaited: its reply is in flight');
  t.equal(skipHole(k.tlb, holes, v0 + 20, v0 + 64, v0 + 64, span), 1, 'the later hole is skipped without a second request');
  t.equal(k.log.length, asked + 1);
  // The second pass: the fault collects the reply in flight instead of asking again.
  t.equal(k.tlb.fault((v0 + 4) * PAGE_SIZE, 1, false, true), 0);
  t.equal(k.tlb.prefetchHits, 1, 'the hole came from the request posted when it was skipped');
  t.ok(k.tlb.usable(v0 + 20, false), 'and so did the later one');
});

t.test('a hole that runs to the end of the command is faulted at once (nothing to copy meanwhile)', async (t) => {
  const { k, v0, span } = heldWithHoles(64, [30, 31]);
  const holes = new Holes();
  const asked = k.log.length;
  t.equal(skipHole(k.tlb, holes, v0 + 30, v0 + 32, v0 + 64, span), 0);
  t.equal(holes.posted, false, 'no request spent on it');
  k.serve();
  t.equal(k.log.length, asked, 'nothing was posted');
});

t.test('one request per command: a hole outside it is faulted at once', async (t) => {
  const { k, v0, span } = heldWithHoles(64, [2, 40]);
  const holes = new Holes();
  // A window cut at the first hole (cap 4): the hole at 40 is not in the request.
  t.equal(skipHole(k.tlb, holes, v0 + 2, v0 + 64, v0 + 6, span), 1);
  t.equal(k.tlb.awaiting((v0 + 40) * PAGE_SIZE), false);
  t.equal(skipHole(k.tlb, holes, v0 + 40, v0 + 64, v0 + 64, span), 0, 'the command spent its request: faulted now');
});

t.test('an invalidation of the skipped hole while its request is in flight: not awaited any more, the fault asks again', async (t) => {
  const { k, v0, span } = heldWithHoles(64, [8]);
  const holes = new Holes();
  t.equal(skipHole(k.tlb, holes, v0 + 8, v0 + 64, v0 + 64, span), 1);
  k.invalidate((v0 + 8) * PAGE_SIZE, (v0 + 9) * PAGE_SIZE);
  t.equal(k.tlb.awaiting((v0 + 8) * PAGE_SIZE), false, 'its entry in the reply is void');
  k.setGen(7);
  const asked = k.log.length;
  k.serve();
  t.equal(k.tlb.fault((v0 + 8) * PAGE_SIZE, 1, false, true), 0);
  k.serve();
  t.equal(k.tlb.gen(v0 + 8), 7, 'installed from a reply made after the invalidation');
  t.ok(k.log.length > asked, 'asked again');
});

t.test('Holes merges touching holes', async (t) => {
  const h = new Holes();
  h.add(0, PAGE_SIZE);
  h.add(PAGE_SIZE, 2 * PAGE_SIZE);
  h.add(8 * PAGE_SIZE, PAGE_SIZE);
  t.same([h.off, h.len], [[0, 8 * PAGE_SIZE], [3 * PAGE_SIZE, PAGE_SIZE]]);
  h.reset();
  t.equal(h.count, 0);
});
