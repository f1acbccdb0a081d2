// The three invalidation defects of issue 13, each with the test that caught it:
// a refused blockable invalidation warns and goes on (seq even, readBegin does
// not hang); the run's safety verdict reads the invalidators' counters, not the
// log text; an ack timeout with the IOMMU off is a violation the run reports
// (with it on, the device is fenced).
import t from 'tap';
import { PAGE_SIZE } from '../../src/shm/constants.js';
import { DeviceCtl } from '../../src/shm/device_ctl.js';
import { makeRange, MmuNotifierSubscriptions, type IntervalNotifier, type MmuNotifierRange } from '../../src/kernel/mmu_notifier.js';
import { PROT_READ, PROT_WRITE } from '../../src/kernel/mm.js';
import { safetyCheck } from '../../src/workloads/kernel_boot.js';
import { kernelMachine, mirrorSpec, pattern, openMirrors } from '../fixtures/kernel_machine.js';

const P = PAGE_SIZE;
const RW = PROT_READ | PROT_WRITE;

/** Waits until the late device has caught up with every batch posted to it. */
async function caughtUp(ctl: Int32Array): Promise<void> {
  while (Atomics.load(ctl, DeviceCtl.invAck) !== Atomics.load(ctl, DeviceCtl.invSeq)) await new Promise((res) => setTimeout(res, 10));
}

/** Resolves to 'timeout' when p has not settled within ms. */
function within<T>(p: Promise<T>, ms: number): Promise<T | 'timeout'> {
  return Promise.race([p, new Promise<'timeout'>((res) => setTimeout(() => res('timeout'), ms).unref())]);
}

t.test('a blockable invalidation a callback refuses: WARN, go on, seq even, readBegin does not hang', async (t) => {
  const warned: string[] = [];
  const subs = new MmuNotifierSubscriptions('mm test', (m) => warned.push(m));
  const called: string[] = [];
  const refuser = subs.insert(0, 10 * P, { invalidate: () => (called.push('bad'), false) }, 'bad driver');
  const good = {
    invalidate(sub: IntervalNotifier, _r: MmuNotifierRange, seq: number): boolean {
      sub.setSeq(seq);
      called.push('good');
      return true;
    },
  };
  const other = subs.insert(0, 10 * P, good, 'good driver');
  const r = makeRange(0, P, 'unmap', null, true);
  t.equal(subs.invalidateRangeStart(r), 0, 'a blockable invalidation does not fail');
  t.same(called, ['bad', 'good'], 'the subscribers after the refusing one are still called');
  t.equal(subs.warnings, 1);
  t.match(warned[0], /WARNING: notifier 'bad driver' of mm test refused a blockable unmap invalidation/);
  await subs.invalidateRangeEnd(r, r.deferred);
  t.equal(subs.invalidateSeq % 2, 0, 'seq even at rest');
  t.equal(subs.activeInvalidateRanges, 0);
  t.not(await within(other.readBegin(), 1000), 'timeout', 'readBegin of a subscriber returns');
  t.not(await within(refuser.readBegin(), 1000), 'timeout', 'and of the refusing one');
});

t.test('ack timeouts: counted by the invalidator, a violation with the IOMMU off, fenced with it on', async (t) => {
  const { machine, kernel } = await kernelMachine(t, [mirrorSpec('m0'), mirrorSpec('io0')], { check: true, iommu: ['io0'], ackTimeoutMs: 150 });
  const mm = kernel.createMm();
  const [m0, io0] = await openMirrors(t, kernel, mm, ['m0', 'io0']);
  const va = await mm.mmap({ length: 4 * P, prot: RW });
  await mm.write(va, pattern(4 * P, 1));

  t.test('a fake log line is not a verdict; a clean run passes', async (t) => {
    await m0.read(va, 1);
    kernel.log.push('somebody: did not ack (a message that only looks like one)');
    t.equal(safetyCheck([kernel]).ok, true, 'the verdict does not read log text');
    kernel.log.length = 0;
  });

  t.test('IOMMU off: the run reports an ack-timeout violation naming the device', async (t) => {
    await m0.read(va, 2);
    const ctl = machine.device('m0').shm.ctl;
    Atomics.store(ctl, DeviceCtl.invDelayMs, 400);
    await mm.madviseDontneed(va, P);
    Atomics.store(ctl, DeviceCtl.invDelayMs, 0);
    await caughtUp(ctl);
    const c = kernel.invalidatorCounters().find((x) => x.device === 'm0')!;
    t.equal(c.timedOut, 1, 'the invalidator counted the timeout');
    t.equal(c.fenced, false);
    t.equal(kernel.violations.length, 1);
    t.match(kernel.violations[0], { kind: 'ack-timeout', device: 'm0', ms: 150 });
    t.ok(kernel.violations[0].ranges.some((r) => r.start <= va && va < r.end), 'the violation names the range');
    kernel.log.length = 0; // dmesg cleared: the verdict must not depend on it
    const v = safetyCheck([kernel]);
    t.equal(v.ok, false, 'the run fails');
    t.match(v.detail, /m0: 1 invalidation\(s\) not acked in time \(IOMMU off: safety violation ack-timeout\)/);
  });

  t.test('IOMMU on: the device is fenced, no kernel violation (contained), still named', async (t) => {
    const before = kernel.violations.length;
    await io0.read(va + 2 * P, 1);
    const ctl = machine.device('io0').shm.ctl;
    Atomics.store(ctl, DeviceCtl.invDelayMs, 400);
    await mm.madviseDontneed(va + 2 * P, P);
    Atomics.store(ctl, DeviceCtl.invDelayMs, 0);
    await caughtUp(ctl);
    t.equal(kernel.violations.length, before, 'contained: not a violation');
    const c = kernel.invalidatorCounters().find((x) => x.device === 'io0')!;
    t.equal(c.timedOut, 1);
    t.equal(c.fenced, true);
    t.match(safetyCheck([kernel]).detail, /io0: 1 invalidation\(s\) not acked in time \(fenced off its IOMMU domain\)/);
  });
});
