// Translations the importer's driver installs when it submits a job (src/drivers/submit_map.ts,
// a GPU driver's map at submission): the device then reads an exporter's BAR with no page
// request; an invalidation racing the map leaves an empty post (the device faults), one after
// the post drops what it installed; releaseDropped gives the slots back with no invalidation;
// and the exporter's keep hint (BarExporter.keepFor) steers recycling away from kept buffers.
import t from 'tap';
import { allP2p } from '../../src/kernel/p2p_map.js';
import { PAGE_SIZE } from '../../src/shm/constants.js';
import { BarExporter } from '../../src/drivers/bar_exporter.js';
import { mapAtSubmit } from '../../src/drivers/submit_map.js';
import { KiB, kernelMachine, MiB, mirrorSpec, pattern, openMirrors, bytesEq } from '../fixtures/kernel_machine.js';

const PAGES = 8;

async function rig(t: { teardown(fn: () => unknown): void }, slots = 16) {
  const { kernel } = await kernelMachine(t, [mirrorSpec('m0'), mirrorSpec('exp', 1 * MiB, slots * 4 * KiB)], { check: true, policy: allP2p });
  const mm = kernel.createMm();
  const [d0] = await openMirrors(t, kernel, mm, ['m0']);
  const ex = new BarExporter(kernel, 'exp', { importers: '*', readOnly: false, requireIommu: false, cpuMappable: false });
  const { va, vma } = await ex.mmap(mm, 12);
  const data = pattern(12 * PAGE_SIZE, 41);
  ex.fill(vma, 0, data);
  const target = d0.submitMapTarget();
  if (!target) throw new Error('no submit-map target with the IOMMU off');
  return { kernel, mm, d0, ex, va, vma, data, target };
}

t.test('a map at submission: the device reads the pages with no page request', async (t) => {
  const { d0, va, data, target } = await rig(t);
  t.equal(await mapAtSubmit(target, va, PAGES, false), PAGES, 'every page posted');
  const r = await d0.read(va, PAGES);
  bytesEq(t, r.data, data.subarray(0, PAGES * PAGE_SIZE), 'the exporter\'s bytes, through its BAR');
  t.equal(r.requests, 0, 'no page request: the device installed the post');
  t.equal(d0.violations().count, 0);
});

t.test('an invalidation racing the map leaves an empty post: the device faults', async (t) => {
  const { mm, d0, va, data, target } = await rig(t);
  let raced = 0;
  target.beforeLock = async () => {
    raced++;
    await mm.revokeRange(va, va + 2 * PAGE_SIZE, null);
  };
  t.equal(await mapAtSubmit(target, va, PAGES, false), 0, 'an empty post');
  target.beforeLock = null;
  t.equal(raced, 1);
  const r = await d0.read(va, PAGES);
  bytesEq(t, r.data, data.subarray(0, PAGES * PAGE_SIZE));
  t.equal(r.pagesFaulted, PAGES, 'every page faulted: nothing of the void map was installed');
  t.equal(d0.violations().count, 0);
});

t.test('an invalidation after the post drops what it installed', async (t) => {
  const { mm, d0, va, data, target } = await rig(t);
  t.equal(await mapAtSubmit(target, va, PAGES, false), PAGES);
  // The device has not looked at its mailbox yet: the revoke reaches it with the post still there.
  await mm.revokeRange(va, va + PAGES * PAGE_SIZE, null);
  const r = await d0.read(va, PAGES);
  bytesEq(t, r.data, data.subarray(0, PAGES * PAGE_SIZE));
  t.equal(r.pagesFaulted, PAGES, 'every page refaulted: the revoke dropped the posted entries');
  t.equal(d0.violations().count, 0);
});

t.test('the next map waits for the device to install the previous post', async (t) => {
  const { d0, va, target } = await rig(t);
  t.equal(await mapAtSubmit(target, va, 4, false), 4);
  let second = -2;
  const p = mapAtSubmit(target, va + 4 * PAGE_SIZE, 4, false).then((n) => (second = n));
  await new Promise((r) => setTimeout(r, 30));
  t.equal(second, -2, 'not posted while the mailbox holds the first post');
  t.equal((await d0.read(va, 4)).requests, 0, 'the device installs the first post');
  t.equal(await p, 4, 'then the second is posted');
  t.equal((await d0.read(va + 4 * PAGE_SIZE, 4)).requests, 0);
});

t.test('releaseDropped: the slots go back to the exporter with no invalidation', async (t) => {
  const { kernel, ex, vma, va, target } = await rig(t);
  t.equal(await mapAtSubmit(target, va, PAGES, true), PAGES);
  const bar = ex.barManager;
  t.equal(bar.holdersOf(ex.pageOf(vma, 0)), 1, 'the map made the device a holder');
  const sent = kernel.invalidator('m0').stats.sent;
  await target.releaseDropped(va, va + PAGES * PAGE_SIZE);
  t.equal(bar.holdersOf(ex.pageOf(vma, 0)), 0, 'released');
  t.equal(bar.holdersOf(ex.pageOf(vma, PAGES - 1)), 0);
  t.equal(kernel.invalidator('m0').stats.sent, sent, 'no invalidation was sent');
});

t.test('keepFor: recycling takes the slots of buffers not kept', async (t) => {
  // 8 slots; the device holds pages 0-3 and 4-7; mapping 8-11 needs 4 of them back.
  const run = async (keep: boolean) => {
    const { mm, d0, ex, vma, va } = await rig(t, 8);
    await d0.read(va, 4);
    await d0.read(va + 4 * PAGE_SIZE, 4);
    if (keep) ex.keepFor('m0', mm, [{ start: va, end: va + 4 * PAGE_SIZE }]);
    await d0.read(va + 8 * PAGE_SIZE, 4);
    t.equal(d0.violations().count, 0);
    return { first: ex.barManager.slotOf(ex.pageOf(vma, 0)) !== undefined, second: ex.barManager.slotOf(ex.pageOf(vma, 4)) !== undefined };
  };
  t.same(await run(false), { first: false, second: true }, 'drop-behind alone evicts pages 0-3 (the stream\'s furthest behind)');
  t.same(await run(true), { first: true, second: false }, 'with pages 0-3 kept, 4-7 go instead');
});
