// Interval-notifier protocol (mm/mmu_notifier.c): seq parity, readBegin/readRetry,
// nesting, deferred inserts, EAGAIN for non-blockable invalidations. Main thread only.
import t from 'tap';
import { DriverLock } from '../../src/kernel/driver_lock.js';
import { isInvalidating, makeRange, MmuNotifierSubscriptions, type IntervalNotifier, type MmuNotifierRange } from '../../src/kernel/mmu_notifier.js';

const P = 4096;

function recorder(lock = new DriverLock('test driver')) {
  const calls: { range: MmuNotifierRange; seq: number }[] = [];
  return {
    lock,
    calls,
    invalidate(sub: IntervalNotifier, range: MmuNotifierRange, seq: number): boolean {
      if (!lock.tryLock()) {
        if (!range.blockable) return false;
        sub.setSeq(seq);
        return true;
      }
      sub.setSeq(seq);
      calls.push({ range, seq });
      lock.unlock();
      return true;
    },
  };
}

t.test('readRetry is true after an overlapping invalidation, false after a non-overlapping one', async (t) => {
  const subs = new MmuNotifierSubscriptions('mm test');
  const ops = recorder();
  const sub = subs.insert(10 * P, 10 * P, ops, 'a');
  const seq = await sub.readBegin();
  const far = makeRange(100 * P, 110 * P, 'unmap', null);
  t.equal(subs.invalidateRangeStart(far), 0);
  await subs.invalidateRangeEnd(far, far.deferred);
  t.equal(sub.readRetry(seq), false, 'an invalidation elsewhere does not disturb the reader');
  const near = makeRange(15 * P, 16 * P, 'clear', null);
  subs.invalidateRangeStart(near);
  t.equal(ops.calls.length, 1, 'only the overlapping invalidation called the notifier');
  t.equal(ops.calls[0].range.event, 'clear');
  await subs.invalidateRangeEnd(near, near.deferred);
  t.equal(sub.readRetry(seq), true, '[Required: mmu_interval_read_retry() == true]');
  const seq2 = await sub.readBegin();
  t.equal(sub.readRetry(seq2), false, 'a fresh readBegin is clean');
});

t.test('nested and overlapping invalidations end together with an even seq, once', async (t) => {
  const subs = new MmuNotifierSubscriptions('mm test');
  subs.insert(0, 100 * P, recorder(), 'a');
  const before = subs.invalidateSeq;
  t.equal(before % 2, 0, 'idle seq is even');
  const r1 = makeRange(0, 10 * P, 'unmap', null);
  const r2 = makeRange(5 * P, 20 * P, 'protection', null);
  subs.invalidateRangeStart(r1);
  const odd = subs.invalidateSeq;
  t.equal(odd % 2, 1, 'odd while invalidating');
  subs.invalidateRangeStart(r2);
  t.equal(subs.invalidateSeq, odd, 'the nested invalidation shares the odd seq');
  await subs.invalidateRangeEnd(r1, r1.deferred);
  t.equal(subs.invalidateSeq, odd, 'the first end does not make it even');
  t.ok(isInvalidating(subs));
  await subs.invalidateRangeEnd(r2, r2.deferred);
  t.equal(subs.invalidateSeq, odd + 1, 'the last end makes it even exactly once');
  t.equal(subs.activeInvalidateRanges, 0);
});

t.test('readBegin waits while its own range is being invalidated, not for other ranges', async (t) => {
  const subs = new MmuNotifierSubscriptions('mm test');
  const a = subs.insert(0, 10 * P, recorder(), 'a');
  const b = subs.insert(50 * P, 10 * P, recorder(), 'b');
  const r = makeRange(0, P, 'unmap', null);
  let release!: () => void;
  r.defer(new Promise<void>((res) => (release = res)));
  subs.invalidateRangeStart(r);
  const end = subs.invalidateRangeEnd(r, r.deferred);
  let aDone = false;
  const pa = a.readBegin().then((s) => ((aDone = true), s));
  await b.readBegin(); // b is not being invalidated: returns at once
  await new Promise((res) => setImmediate(res));
  t.equal(aDone, false, 'a waits for the invalidation of its range');
  release();
  await end;
  const s = await pa;
  t.equal(a.readRetry(s), false);
  t.equal(subs.invalidateSeq % 2, 0);
});

t.test('a non-blockable invalidation whose callback cannot take its lock fails with EAGAIN', async (t) => {
  const subs = new MmuNotifierSubscriptions('mm test');
  const ops = recorder();
  subs.insert(0, 10 * P, ops, 'a');
  await ops.lock.lock();
  const r = makeRange(0, P, 'clear', null, false);
  t.equal(subs.invalidateRangeStart(r), 'EAGAIN');
  t.equal(subs.invalidateSeq % 2, 0, 'on EAGAIN the invalidation is already ended: seq is even again');
  t.equal(subs.activeInvalidateRanges, 0);
  ops.lock.unlock();
  const r2 = makeRange(0, P, 'clear', null, false);
  t.equal(subs.invalidateRangeStart(r2), 0, 'with the lock free it succeeds');
  await subs.invalidateRangeEnd(r2, r2.deferred);
});

t.test('insert during an invalidation is deferred to the final end; remove waits it out', async (t) => {
  const subs = new MmuNotifierSubscriptions('mm test');
  const a = subs.insert(0, 10 * P, recorder(), 'a');
  const r = makeRange(0, P, 'unmap', null);
  subs.invalidateRangeStart(r);
  const late = subs.insert(0, 10 * P, recorder(), 'late');
  t.equal(late.state, 'deferred-insert');
  t.equal(subs.subscribers.length, 1);
  let removed = false;
  const rm = a.remove().then(() => (removed = true));
  await new Promise((res) => setImmediate(res));
  t.equal(removed, false, 'remove waits for the running invalidation');
  await subs.invalidateRangeEnd(r, r.deferred);
  await rm;
  t.same(subs.subscribers.map((s) => s.name), ['late']);
  const s = await late.readBegin();
  t.equal(late.readRetry(s), false);
});

// __mmu_interval_notifier_insert(): `length == 0 || check_add_overflow(start, length - 1, ...)` is -EOVERFLOW.
t.test('insert of an empty or overflowing range fails with EOVERFLOW, as upstream', async (t) => {
  const subs = new MmuNotifierSubscriptions('mm test');
  t.throws(() => subs.insert(0, 0, recorder(), 'empty'), { code: 'EOVERFLOW' });
  t.throws(() => subs.insert(Number.MAX_SAFE_INTEGER - P, 2 * P, recorder(), 'past the end'), { code: 'EOVERFLOW' });
  t.equal(subs.subscribers.length, 0);
});

// mmu_interval_notifier_remove(): a subscriber still on the deferred list
// (inserted during the invalidation) was never in the tree, so no callback
// can be running for it: upstream unlinks it and returns without waiting.
t.test('remove of a deferred insert returns at once; the running invalidation never sees it', async (t) => {
  const subs = new MmuNotifierSubscriptions('mm test');
  subs.insert(0, 10 * P, recorder(), 'a');
  const r = makeRange(0, P, 'unmap', null);
  subs.invalidateRangeStart(r);
  const lateOps = recorder();
  const late = subs.insert(0, 10 * P, lateOps, 'late');
  t.equal(late.state, 'deferred-insert');
  let removed = false;
  const rm = late.remove().then(() => (removed = true));
  await new Promise((res) => setImmediate(res));
  t.equal(removed, true, 'not held until the invalidation ends');
  t.equal(isInvalidating(subs), true, 'the invalidation is still running');
  await subs.invalidateRangeEnd(r, r.deferred);
  await rm;
  t.same(subs.subscribers.map((s) => s.name), ['a'], 'the final inv_end did not insert it');
  const r2 = makeRange(0, P, 'unmap', null);
  subs.invalidateRangeStart(r2);
  await subs.invalidateRangeEnd(r2, r2.deferred);
  t.equal(lateOps.calls.length, 0, 'never called');
});
