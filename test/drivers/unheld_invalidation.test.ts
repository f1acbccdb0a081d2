// An exporter recycling BAR slots under one importer invalidates only the
// importers that hold mappings of the range (ImporterBinding.holdsNothingIn):
// the others get nothing to ack, as with upstream's per-range interval
// notifiers. Elsewhere (anonymous memory) only migrations are filtered: a
// migration reaches an importer only while it holds a translation of the
// range (it faulted it, or the range migrated to it and its driver installed
// the translations, and no flush took it out since); other events still
// reach every importer.
import t from 'tap';
import { allP2p } from '../../src/kernel/p2p_map.js';
import { PAGE_SIZE } from '../../src/shm/constants.js';
import { BarExporter } from '../../src/drivers/bar_exporter.js';
import { PROT_READ, PROT_WRITE } from '../../src/kernel/mm.js';
import { DeviceCtl } from '../../src/shm/device_ctl.js';
import { migrateToDevice, migrateToSystem } from '../../src/kernel/migrate.js';
import { KiB, kernelMachine, MiB, mirrorSpec, pattern, openMirrors, bytesEq } from '../fixtures/kernel_machine.js';

t.test('BAR recycling under m0 does not invalidate m1, which holds nothing there', async (t) => {
  const { kernel } = await kernelMachine(t, [mirrorSpec('m0'), mirrorSpec('m1'), mirrorSpec('exp', 1 * MiB, 16 * KiB)], { check: true, policy: allP2p });
  const mm = kernel.createMm();
  const [d0] = await openMirrors(t, kernel, mm, ['m0', 'm1']);
  const ex = new BarExporter(kernel, 'exp', { importers: '*', readOnly: false, requireIommu: false, cpuMappable: false });
  const n = 12;
  const { va, vma } = await ex.mmap(mm, n);
  const data = pattern(n * PAGE_SIZE, 41);
  ex.fill(vma, 0, data);
  const inv0 = kernel.invalidator('m0');
  const inv1 = kernel.invalidator('m1');
  const sent0 = inv0.stats.sent;
  const sent1 = inv1.stats.sent;
  bytesEq(t, (await d0.read(va, n)).data, data, 'm0 reads 12 pages through 4 slots');
  t.ok(ex.barManager.revokedForReuse > 0, `held slots were recycled (${ex.barManager.revokedForReuse})`);
  t.ok(inv0.stats.sent > sent0, 'm0, the holder, was invalidated');
  t.equal(inv1.stats.sent, sent1, 'm1 was not: it holds nothing of the export');
  t.equal(d0.violations().count, 0);

  const anon = await mm.mmap({ length: PAGE_SIZE, prot: PROT_READ | PROT_WRITE });
  await mm.revokeRange(anon, anon + PAGE_SIZE, null);
  t.equal(inv1.stats.sent, sent1 + 1, 'an anonymous range still reaches every importer');
  await mm.munmap(va, n * PAGE_SIZE);
});

t.test('a migration of anonymous memory reaches only the importers that hold a translation of it', async (t) => {
  const { kernel } = await kernelMachine(t, [mirrorSpec('m0'), mirrorSpec('m1'), mirrorSpec('m2')], { check: true });
  const mm = kernel.createMm();
  const [d0, d1, d2] = await openMirrors(t, kernel, mm, ['m0', 'm1', 'm2']);
  const [inv0, inv1, inv2] = ['m0', 'm1', 'm2'].map((n) => kernel.invalidator(n));
  const n = 4;
  const va = await mm.mmap({ length: n * PAGE_SIZE, prot: PROT_READ | PROT_WRITE });
  const data = pattern(n * PAGE_SIZE, 7);
  await mm.write(va, data);
  bytesEq(t, (await d0.read(va, n)).data, data, 'm0 reads the buffer (it faults it in)');
  const sent = () => [inv0.stats.sent, inv1.stats.sent, inv2.stats.sent];
  let s = sent();
  t.equal(await migrateToDevice(mm, va, va + PAGE_SIZE, kernel.devmem('m2')), 1, 'page 0 migrates to m2');
  t.same(sent(), [s[0] + 1, s[1], s[2]], 'm0, which holds page 0, is invalidated; m1 (never faulted it) is not; nor m2, the owner, which holds nothing of it');
  s = sent();
  t.equal(await migrateToSystem(mm, va, va + PAGE_SIZE), 1, 'and back to RAM');
  t.same(sent(), [s[0], s[1], s[2] + 1], 'the flush took page 0 out of what m0 holds: m0 is not invalidated; m2 is (its own flush): the migration installed page 0 in its TLB (src/drivers/migrate_map.ts)');
  s = sent();
  await mm.revokeRange(va + 3 * PAGE_SIZE, va + n * PAGE_SIZE, null);
  t.same(sent(), [s[0] + 1, s[1] + 1, s[2] + 1], 'other events still reach every importer');
  s = sent();
  bytesEq(t, (await d1.read(va, n)).data, data, 'm1 reads the buffer: the bytes survived both migrations');
  bytesEq(t, (await d2.read(va, n)).data, data, 'm2 too');
  t.equal(await migrateToDevice(mm, va, va + n * PAGE_SIZE, kernel.devmem('m2')), n, 'the whole buffer migrates to m2');
  t.same(sent(), [s[0] + 1, s[1] + 1, s[2] + 1], 'm0 still holds pages 1-2, m1 all of them: both invalidated; m2 holds them too: its own flush');
  bytesEq(t, (await d0.read(va, n)).data, data, 'm0 refaults and reads the same bytes (from m2\'s memory)');
  t.equal(d0.violations().count + d1.violations().count + d2.violations().count, 0, 'no stale access');
  await mm.munmap(va, n * PAGE_SIZE);
});

t.test('a migration still reaches an importer whose last invalidation timed out (its unacked ranges ride along)', async (t) => {
  const { machine, kernel } = await kernelMachine(t, [mirrorSpec('m0'), mirrorSpec('m1')], { check: true, ackTimeoutMs: 150 });
  const mm = kernel.createMm();
  const [d0] = await openMirrors(t, kernel, mm, ['m0', 'm1']);
  const inv0 = kernel.invalidator('m0');
  const va = await mm.mmap({ length: 2 * PAGE_SIZE, prot: PROT_READ | PROT_WRITE });
  const data = pattern(2 * PAGE_SIZE, 9);
  await mm.write(va, data);
  bytesEq(t, (await d0.read(va, 2)).data, data, 'm0 reads (and holds) both pages');
  const ctl = machine.device('m0').shm.ctl;
  Atomics.store(ctl, DeviceCtl.invDelayMs, 400);
  t.equal(await migrateToDevice(mm, va, va + PAGE_SIZE, kernel.devmem('m1')), 1, 'page 0 migrates to m1');
  t.ok(inv0.stats.timedOut > 0 && inv0.hasUnacked, 'm0 did not ack in time: its range is still unacked');
  const sent = inv0.stats.sent;
  t.equal(await migrateToDevice(mm, va + PAGE_SIZE, va + 2 * PAGE_SIZE, kernel.devmem('m1')), 1, 'page 1 migrates to m1');
  t.equal(inv0.stats.sent, sent + 1, 'm0 is invalidated again (it holds page 1, and the batch carries page 0 again)');
  t.equal(await migrateToSystem(mm, va, va + PAGE_SIZE), 1, 'page 0 back to RAM');
  t.ok(inv0.stats.sent > sent + 1, 'a migration of page 0, which m0 no longer holds, is still sent to m0 while its ranges are unacked');
  Atomics.store(ctl, DeviceCtl.invDelayMs, 0);
  while (Atomics.load(ctl, DeviceCtl.invAck) !== Atomics.load(ctl, DeviceCtl.invSeq)) await new Promise((res) => setTimeout(res, 10));
  await mm.munmap(va, 2 * PAGE_SIZE);
});

t.test('a flush in flight under m0 makes m0 wait only for invalidations that overlap it, not for a range only m1 holds', async (t) => {
  const { machine, kernel } = await kernelMachine(t, [mirrorSpec('m0'), mirrorSpec('m1'), mirrorSpec('exp', 1 * MiB, 64 * KiB)], { check: true, policy: allP2p });
  const mm = kernel.createMm();
  const [d0, d1] = await openMirrors(t, kernel, mm, ['m0', 'm1']);
  const ex = new BarExporter(kernel, 'exp', { importers: '*', readOnly: false, requireIommu: false, cpuMappable: false });
  const n = 8;
  const { va, vma } = await ex.mmap(mm, n);
  const data = pattern(n * PAGE_SIZE, 43);
  ex.fill(vma, 0, data);
  const half = va + 4 * PAGE_SIZE;
  bytesEq(t, (await d0.read(va, 4)).data, data.subarray(0, 4 * PAGE_SIZE), 'm0 reads (and holds) pages 0-3');
  bytesEq(t, (await d1.read(half, 4)).data, data.subarray(4 * PAGE_SIZE), 'm1 reads (and holds) pages 4-7');
  const inv0 = kernel.invalidator('m0');
  const sent0 = inv0.stats.sent;
  // m0 acks late: its flush of pages 0-3 stays in flight while pages 4-7 are revoked.
  const ctl0 = machine.device('m0').shm.ctl;
  Atomics.store(ctl0, DeviceCtl.invDelayMs, 300);
  const order: string[] = [];
  const first = mm.revokeRange(va, half, null).then(() => order.push('pages 0-3'));
  await new Promise((res) => setImmediate(res)); // m0's post is out, its ack pending
  const second = mm.revokeRange(half, va + n * PAGE_SIZE, null).then(() => order.push('pages 4-7'));
  await Promise.all([first, second]);
  Atomics.store(ctl0, DeviceCtl.invDelayMs, 0);
  t.equal(inv0.stats.sent, sent0 + 1, 'm0 got one post, for its own pages: pages 4-7 (held by m1 only) did not queue behind its flush');
  t.same(order, ['pages 4-7', 'pages 0-3'], "the revoke of m1's pages ended without waiting for m0's late ack");
  t.equal(inv0.stats.timedOut, 0, 'm0 acked in time');
  bytesEq(t, (await d0.read(va, n)).data, data, 'm0 refaults and reads all 8 pages');
  t.equal(d0.violations().count + d1.violations().count, 0, 'no stale access');
  await mm.munmap(va, n * PAGE_SIZE);
});

t.test('an invalidation overlapping a flush in flight waits for its ack, though the range is no longer held', async (t) => {
  const { machine, kernel } = await kernelMachine(t, [mirrorSpec('m0'), mirrorSpec('exp', 1 * MiB, 64 * KiB)], { check: true, policy: allP2p });
  const mm = kernel.createMm();
  const [d0] = await openMirrors(t, kernel, mm, ['m0']);
  const ex = new BarExporter(kernel, 'exp', { importers: '*', readOnly: false, requireIommu: false, cpuMappable: false });
  const n = 4;
  const { va, vma } = await ex.mmap(mm, n);
  const data = pattern(n * PAGE_SIZE, 47);
  ex.fill(vma, 0, data);
  bytesEq(t, (await d0.read(va, n)).data, data, 'm0 reads (and holds) pages 0-3');
  const inv0 = kernel.invalidator('m0');
  const sent0 = inv0.stats.sent;
  // m0 acks late: its flush of pages 0-3 took them out of what it holds and stays in flight.
  const ctl0 = machine.device('m0').shm.ctl;
  Atomics.store(ctl0, DeviceCtl.invDelayMs, 300);
  const order: string[] = [];
  const first = mm.revokeRange(va, va + n * PAGE_SIZE, null).then(() => order.push('pages 0-3'));
  await new Promise((res) => setImmediate(res)); // m0's post is out, its ack pending
  const second = mm.revokeRange(va, va + 2 * PAGE_SIZE, null).then(() => order.push('pages 0-1'));
  await Promise.all([first, second]);
  Atomics.store(ctl0, DeviceCtl.invDelayMs, 0);
  t.equal(inv0.stats.sent, sent0 + 2, 'the revoke of pages 0-1 went to m0 too: the flush in flight may still be all it has of them');
  t.same(order, ['pages 0-3', 'pages 0-1'], 'the revoke of pages 0-1 ended only after m0 acked the flush of pages 0-3');
  t.equal(inv0.stats.timedOut, 0, 'm0 acked in time');
  bytesEq(t, (await d0.read(va, n)).data, data, 'm0 refaults and reads all 4 pages');
  t.equal(d0.violations().count, 0, 'no stale access');
  await mm.munmap(va, n * PAGE_SIZE);
});
