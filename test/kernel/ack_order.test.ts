// Invalidation acks and page requests on one main thread (issue 11):
// - the kernel blocks for an ack only within a bound, and a device waiting
//   for a page-request reply acks meanwhile, so a revoke made while that
//   reply cannot come (main holds the mmap_lock the fault needs) completes,
//   in time, with the request still unanswered: no deadlock;
// - a device slower than the blocking budget is waited for with
//   Atomics.waitAsync: the event loop runs meanwhile, and a loop of
//   synchronously acked invalidations still gives it turns;
// - page requests go before revokes (src/kernel/page_request_order.ts): a
//   revoke waits for the requests already posted, shares that wait with
//   the revokes made meanwhile, and never waits past its bound.
import t from 'tap';
import { eventLoopTurnIfDue } from '../../src/kernel/invalidate_broadcast.js';
import { PageRequestOrder } from '../../src/kernel/page_request_order.js';
import { PAGE_SIZE } from '../../src/shm/constants.js';
import { DeviceCtl } from '../../src/shm/device_ctl.js';
import { bytesEq, kernelMachine, mirrorSpec, openMirrors, pattern } from '../fixtures/kernel_machine.js';
import { until } from '../fixtures/until.js';

t.test('a device waiting for a page-request reply acks a revoke meanwhile', async (t) => {
  const { kernel } = await kernelMachine(t, [mirrorSpec('m0')], { ackTimeoutMs: 5000 });
  const mm = kernel.createMm();
  const [d0] = await openMirrors(t, kernel, mm, ['m0']);
  const inv = kernel.invalidator('m0');
  const va = await mm.mmap({ length: 4 * PAGE_SIZE, prot: 3 });
  await mm.write(va, pattern(4 * PAGE_SIZE, 5));
  await mm.lock.lock(); // the fault server needs the mmap_lock: no reply can come
  const read = d0.read(va, 4);
  await until('m0 to post its page request', () => d0.requestPending(), 4000);
  const sent = inv.stats.sent;
  const r0 = performance.now();
  await mm.revokeRange(va, va + PAGE_SIZE, null);
  t.ok(inv.stats.sent > sent, 'the revoke reached m0');
  t.equal(inv.stats.timedOut, 0, 'm0 acked it, in time');
  t.ok(performance.now() - r0 < 4000, 'the revoke did not wait for the page request it cannot get');
  t.ok(d0.requestPending(), 'the page request is still unanswered');
  mm.lock.unlock();
  const got = await read;
  bytesEq(t, got.data, pattern(4 * PAGE_SIZE, 5), 'the read completes with the right bytes once the lock is free');
  t.equal(kernel.violations.length, 0);
});

t.test('a device slower than the blocking budget is waited for on the event loop', async (t) => {
  const { kernel, machine } = await kernelMachine(t, [mirrorSpec('m0')], { ackTimeoutMs: 5000 });
  const mm = kernel.createMm();
  await openMirrors(t, kernel, mm, ['m0']);
  const inv = kernel.invalidator('m0');
  const va = await mm.mmap({ length: PAGE_SIZE, prot: 3 });
  // Most round trips to an idle device end while main blocks; a few may miss the budget on busy cores.
  for (let i = 0; i < 20; i++) await mm.revokeRange(va, va + PAGE_SIZE, null);
  t.ok(inv.stats.syncAcks > 0, `an idle device acks while main blocks (${inv.stats.syncAcks} of 20 round trips)`);
  const ctl = machine.device('m0').shm.ctl;
  Atomics.store(ctl, DeviceCtl.invDelayMs, 100);
  const sync = inv.stats.syncAcks;
  let timerAt = 0;
  setTimeout(() => (timerAt = performance.now()), 5);
  await mm.revokeRange(va, va + PAGE_SIZE, null);
  const doneAt = performance.now();
  Atomics.store(ctl, DeviceCtl.invDelayMs, 0);
  t.equal(inv.stats.syncAcks, sync, 'the late ack came after main stopped blocking');
  t.ok(timerAt > 0 && timerAt < doneAt, 'a timer ran while the ack was awaited: main blocked for its budget only');
  t.equal(inv.stats.timedOut, 0, 'late, but within the deadline: no timeout');
});

t.test('a loop of synchronously acked invalidations still lets timers run', async (t) => {
  // What roundTrip does after every ack, in a loop that is otherwise
  // microtasks only (as with acks that always arrive while main blocks):
  // without a turn every EVENT_LOOP_TURN_MS, the timer would never fire.
  let fired = false;
  setTimeout(() => (fired = true), 5);
  const t0 = performance.now();
  let n = 0;
  while (!fired && performance.now() - t0 < 2000) {
    const spin = performance.now() + 0.02; // a 20 µs round trip
    while (performance.now() < spin);
    await (eventLoopTurnIfDue() ?? null);
    n++;
  }
  t.ok(fired, `a timer ran during the loop (${n} round trips, ${(performance.now() - t0).toFixed(1)} ms)`);
});

/** A page-request source that is answered after `turns` event-loop turns (or never). */
function source(turns: number): { requestPending(): boolean; checks: number } {
  let left = turns;
  const s = {
    checks: 0,
    requestPending(): boolean {
      s.checks++;
      return left > 0;
    },
  };
  const tick = (): void => {
    if (left > 0 && --left > 0) setImmediate(tick);
  };
  if (Number.isFinite(turns)) setImmediate(tick);
  return s;
}

t.test('page requests before revokes', async (t) => {
  // A bound no loaded machine reaches in 3 turns: the first wait must end because the request was answered.
  const patient = new PageRequestOrder(10_000);
  t.equal(patient.servePending(), undefined, 'no source, nothing to wait for: no event-loop turn');
  const quick = source(3);
  patient.add(quick);
  const a = patient.servePending();
  const b = patient.servePending();
  t.ok(a instanceof Promise, 'a posted request is waited for');
  t.equal(a, b, 'revokes made meanwhile share the one wait (and so leave in one broadcast)');
  await a;
  t.notOk(quick.requestPending(), 'the wait ended once the request was answered');
  const order = new PageRequestOrder();
  order.add(source(Infinity));
  const t0 = performance.now();
  await order.servePending();
  const ms = performance.now() - t0;
  t.ok(ms >= 1.5 && ms < 1000, `a request never answered holds a revoke for its bound only (${ms.toFixed(1)} ms)`);
});
