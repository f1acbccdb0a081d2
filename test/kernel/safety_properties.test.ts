// Tests that fail when a safety property of invalidation breaks (issue 13,
// item 7). Each was checked by breaking the property once in a scratch edit:
// a slow but in-time device writing through a munmap, pages freed only after
// their acks, batches of more than INV_BATCH ranges, a stale entry reaching a
// reopened BAR slot, p2pUnmap called for every held exporter page.
import t from 'tap';
import fc from 'fast-check';
import { PAGE_SIZE, POISON_BYTE } from '../../src/shm/constants.js';
import { DeviceCtl, INV_BATCH } from '../../src/shm/device_ctl.js';
import { BarExporter } from '../../src/drivers/bar_exporter.js';
import { coalesce, type InvRange } from '../../src/kernel/invalidate_broadcast.js';
import { PROT_READ, PROT_WRITE, vpnOf } from '../../src/kernel/mm.js';
import type { Vma } from '../../src/kernel/vma.js';
import type { DeviceRef } from '../../src/kernel/kernel_types.js';
import { allP2p } from '../../src/kernel/p2p_map.js';
import { KiB, kernelMachine, MiB, mirrorSpec, pattern, openMirrors } from '../fixtures/kernel_machine.js';

const P = PAGE_SIZE;
const RW = PROT_READ | PROT_WRITE;
const tick = (ms = 5): Promise<void> => new Promise((res) => setTimeout(res, ms));

/** Every input range lies inside one output range; outputs sorted, disjoint, at most max. */
function checkCoalesced(input: readonly InvRange[], out: readonly InvRange[], max: number): string | null {
  if (out.length > max) return `${out.length} ranges > ${max}`;
  for (let i = 1; i < out.length; i++) if (out[i].start <= out[i - 1].end) return `ranges ${i - 1} and ${i} overlap or touch`;
  for (const r of input) if (!out.some((o) => o.start <= r.start && r.end <= o.end)) return `[${r.start}, ${r.end}) dropped or shrunk`;
  if (input.length && (out[0].start !== Math.min(...input.map((r) => r.start)) || out.at(-1)!.end !== Math.max(...input.map((r) => r.end)))) return 'reaches beyond the inputs';
  return null;
}

t.test('coalesce: more than INV_BATCH ranges, none dropped or shrunk', async (t) => {
  const more = Array.from({ length: INV_BATCH + 4 }, (_, i) => ({ start: (i * 10 + (i % 3)) * P, end: (i * 10 + (i % 3) + 1 + (i % 2)) * P }));
  const out = coalesce(more, INV_BATCH);
  t.equal(checkCoalesced(more, out, INV_BATCH), null);
  t.equal(out.length, INV_BATCH, 'folded down to exactly the batch size');
  t.same(coalesce([{ start: 0, end: P }, { start: P, end: 2 * P }, { start: 5 * P, end: 6 * P }], 8), [{ start: 0, end: 2 * P }, { start: 5 * P, end: 6 * P }], 'adjacent ranges merge, distant ones stay');
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.nat(1000), fc.integer({ min: 1, max: 20 })), { maxLength: 40 }), fc.integer({ min: 1, max: 10 }), (xs, max) => {
      const input = xs.map(([s, n]) => ({ start: s * P, end: (s + n) * P }));
      return checkCoalesced(input, coalesce(input, max), max) === null;
    }),
    { numRuns: 300 },
  );
});

t.test('safety properties with live devices', async (t) => {
  const { machine, kernel } = await kernelMachine(t, [mirrorSpec('m0'), mirrorSpec('m2'), mirrorSpec('rogue'), mirrorSpec('exp', 1 * MiB, 16 * KiB)], { check: true, ackTimeoutMs: 5000, policy: allP2p });
  const mm = kernel.createMm();
  const [m0, m2, rogue] = await openMirrors(t, kernel, mm, ['m0', 'm2', 'rogue']);
  const ctl = (n: string) => machine.device(n).shm.ctl;
  const pfnsOf = (va: number, n: number) => Array.from({ length: n }, (_, i) => {
    const pte = mm.pt.get(vpnOf(va) + i);
    if (pte?.kind !== 'ram') throw new Error(`page ${i} is not in RAM`);
    return pte.pfn;
  });
  const poisoned = (pfn: number) => kernel.ramBytes.subarray(pfn * P, (pfn + 1) * P).every((b) => b === POISON_BYTE);
  const ramGen = machine.shm.ramGen;
  /** Waits until kernel posted a batch to `dev` that it has not acked yet; returns its seq. */
  async function posted(dev: string): Promise<number> {
    const c = ctl(dev);
    while (Atomics.load(c, DeviceCtl.invSeq) === Atomics.load(c, DeviceCtl.invAck)) await tick(1);
    return Atomics.load(c, DeviceCtl.invSeq);
  }

  t.test('a slow but in-time device writing through a munmap: munmap returns after its ack; no write lands in a freed page', async (t) => {
    const n = 64;
    const va = await mm.mmap({ length: n * P, prot: RW });
    await m0.write(va, n, pattern(n * P, 1)); // the device TLB holds writable entries
    const doomed = pfnsOf(va + 16 * P, 32);
    const before = m0.violations().count;
    // The lag must outlast the device's 64-page write below even on a starved host (a write of
    // 256 KiB takes milliseconds; 800 ms was the old margin): the test waits it out once.
    Atomics.store(ctl('m0'), DeviceCtl.invLagMs, 2000);
    t.teardown(() => Atomics.store(ctl('m0'), DeviceCtl.invLagMs, 0));
    let unmappedAt = 0;
    const un = mm.munmap(va + 16 * P, 32 * P).then(() => void (unmappedAt = performance.now()));
    const seq = await posted('m0');
    // The device, which has not acked, goes on writing through its old translations: legal.
    const w = await m0.write(va, n, pattern(n * P, 2));
    const wroteAt = performance.now();
    t.equal(w.cpages, n, 'the device wrote all pages before acking (its translations were still valid)');
    t.equal(unmappedAt, 0, 'munmap had not returned while the device was still writing');
    await un;
    t.ok(Atomics.load(ctl('m0'), DeviceCtl.invAck) - seq >= 0, 'munmap returned after the ack');
    t.ok(unmappedAt >= wroteAt);
    t.ok(doomed.every(poisoned), 'every freed page holds only poison: no device write landed after the free');
    t.equal(m0.violations().count, before, 'no stale-generation access');
    t.same(await mm.read(va, 16 * P), pattern(n * P, 2).subarray(0, 16 * P), 'the surviving pages hold the device writes');
  });

  t.test('pages are freed only after every importer acked', async (t) => {
    const n = 4;
    const va = await mm.mmap({ length: n * P, prot: RW });
    await mm.write(va, pattern(n * P, 3));
    await m2.read(va, n);
    const pfns = pfnsOf(va, n);
    const gens = pfns.map((p) => Atomics.load(ramGen, p));
    Atomics.store(ctl('m2'), DeviceCtl.invLagMs, 300);
    t.teardown(() => Atomics.store(ctl('m2'), DeviceCtl.invLagMs, 0));
    let done = false;
    const un = mm.munmap(va, n * P).then(() => void (done = true));
    const seq = await posted('m2');
    let looks = 0;
    while (Atomics.load(ctl('m2'), DeviceCtl.invAck) !== seq) {
      looks++;
      t.same(pfns.map((p) => Atomics.load(ramGen, p)), gens, 'not freed before the ack: generations unchanged');
      t.notOk(pfns.some(poisoned), 'not poisoned before the ack');
      t.equal(done, false);
      await tick(20);
    }
    await un;
    t.ok(looks >= 3, `looked ${looks} times while the ack was pending`);
    t.ok(pfns.every((p, i) => Atomics.load(ramGen, p) === gens[i] + 1), 'freed after the ack: generation bumped once');
    t.ok(pfns.every(poisoned), 'and poisoned');
  });

  t.test('a batch of 12 ranges to one device: every range is dropped from its TLB', async (t) => {
    const va = await mm.mmap({ length: 48 * P, prot: RW });
    await mm.write(va, pattern(48 * P, 4));
    await m2.read(va, 48);
    t.equal((await m2.read(va + 44 * P, 1)).faults, 0, 'the device TLB holds the pages');
    const ranges = Array.from({ length: 12 }, (_, i) => ({ start: va + i * 4 * P, end: va + (i * 4 + 1) * P }));
    await kernel.invalidator('m2').invalidate(ranges);
    const refaults = [];
    for (const r of ranges) refaults.push((await m2.read(r.start, 1)).faults);
    t.same(refaults, new Array(12).fill(1), 'each of the twelve pages was dropped');
  });

  t.test('more distant ranges than one slot holds go out as several posts, none folded', async (t) => {
    const n = INV_BATCH + 4;
    const va = await mm.mmap({ length: 2 * n * P, prot: RW });
    await mm.write(va, pattern(2 * n * P, 6));
    await m2.read(va, 2 * n);
    const inv = kernel.invalidator('m2');
    const sent = inv.stats.sent;
    const ranges = Array.from({ length: n }, (_, i) => ({ start: va + 2 * i * P, end: va + (2 * i + 1) * P }));
    await inv.invalidate(ranges);
    t.equal(inv.stats.sent - sent, 2, `${n} ranges: two posts of at most ${INV_BATCH}`);
    const gaps = [];
    for (let i = 0; i < n; i++) gaps.push((await m2.read(va + (2 * i + 1) * P, 1)).faults);
    t.same(gaps, new Array(n).fill(0), 'the pages between the ranges were kept (no covering range)');
    const refaults = [];
    for (const r of ranges) refaults.push((await m2.read(r.start, 1)).faults);
    t.same(refaults, new Array(n).fill(1), 'every range was dropped');
    await mm.munmap(va, 2 * n * P);
  });

  t.test('a stale TLB entry reaching a reopened BAR slot is caught by its generation', async (t) => {
    const ex = new BarExporter(kernel, 'exp');
    const a = await ex.mmap(mm, 4);
    ex.fill(a.vma, 0, pattern(4 * P, 5));
    await rogue.read(a.va, 4);
    const bar = ex.barManager;
    const pages = [0, 1, 2, 3].map((i) => ex.pageOf(a.vma, i));
    const slots = pages.map((p) => bar.slotOf(p));
    const before = rogue.violations().count;
    Atomics.store(ctl('rogue'), DeviceCtl.invIgnore, 1);
    t.teardown(() => Atomics.store(ctl('rogue'), DeviceCtl.invIgnore, 0));
    for (const p of pages) await bar.unmapPage(p); // closes the slots; the rogue acks and keeps its entries
    t.equal(bar.mappedSlots, 0);
    await m2.read(a.va, 4); // reopens them, for the same pages
    t.same(pages.map((p) => bar.slotOf(p)), slots, 'same slots, same pages: only the generation tells old from new');
    const r = await rogue.read(a.va, 4);
    t.same(r.data, pattern(4 * P, 5));
    const v = rogue.violations();
    t.equal(v.count - before, 4, 'every stale use reported');
    t.equal(v.records.at(-1)!.kind, 'stale-generation');
    await mm.munmap(a.va, 4 * P);
  });

  // Found by peervma stress (seeds 1..5: stale-generation on the owner's own
  // device-private pages). Closing a BAR slot bumped the generation of the
  // page behind it: the generation the owner's local translation of that
  // page carries too. Order: a peer maps the owner's private pages through
  // the owner's BAR; an invalidation drops every translation and the peer
  // releases its hold (the slots stay open, unheld); the owner refaults
  // (entry gen g); the unheld slots are closed with no invalidation (nobody
  // translates through them); the owner reads through its entry, which
  // nothing invalidated and whose page was never freed: reported as a use
  // after free before the fix.
  t.test("closing a BAR slot leaves the owner's translation of its own private page valid", async (t) => {
    const va = await mm.mmap({ length: 2 * P, prot: RW });
    await mm.write(va, pattern(2 * P, 11));
    await m2.migrateToDev(va, 2);
    t.same((await m0.read(va, 2)).data, pattern(2 * P, 11), 'a peer reads them through the owner BAR');
    const pages = [0, 1].map((i) => {
      const pte = mm.pt.get(vpnOf(va) + i);
      if (pte?.kind !== 'devprivate') throw new Error(`page ${i} is not device-private`);
      return pte.page;
    });
    const bar = kernel.bar('m2');
    t.ok(pages.every((p) => (bar.slotOf(p) ?? -1) >= 0), 'the pages have BAR slots');
    await mm.revokeRange(va, va + 2 * P, null); // every device drops them; the peer's hold goes, the slots stay open
    t.same((await m2.read(va, 2)).data, pattern(2 * P, 11), 'the owner refaults and reads its pages locally');
    const owner = m2.violations().count;
    const peer = m0.violations().count;
    for (const p of pages) await bar.unmapPage(p); // unheld slots: closed with no invalidation
    t.ok(pages.every((p) => (bar.slotOf(p) ?? -1) < 0), 'the slots are closed');
    t.same((await m2.read(va, 2)).data, pattern(2 * P, 11), 'the owner still reads its pages');
    t.equal(m2.violations().count - owner, 0, 'no violation for the owner: its translation was never invalidated and the page never freed');
    t.same((await m0.read(va, 2)).data, pattern(2 * P, 11), 'the peer refaults through new slots');
    t.equal(m0.violations().count - peer, 0, 'and its new translation passes');
    // The local check still catches a real use after free: an owner that acks
    // and keeps its entries (rogue) reads its pages after they went back to RAM.
    Atomics.store(ctl('m2'), DeviceCtl.invIgnore, 1);
    t.teardown(() => Atomics.store(ctl('m2'), DeviceCtl.invIgnore, 0));
    t.equal((await m2.migrateToSys(va, 2)).cpages, 2, 'the private pages are freed');
    await m2.read(va, 2);
    const v = m2.violations();
    t.equal(v.count - owner, 2, 'both stale local uses reported');
    t.same(v.records.slice(-2).map((r) => [r.kind, r.va - va]), [['stale-generation', 0], ['stale-generation', P]], 'as stale-generation, each at its own page');
    Atomics.store(ctl('m2'), DeviceCtl.invIgnore, 0);
    await mm.munmap(va, 2 * P);
  });

  // Found by peervma stress (seed 9): hmmRangeFault answered the owner's write
  // fault on its own private page, left read-only by an mprotect round trip,
  // VALID without WRITE, and the device asked again forever.
  t.test('a device writes its own private page after mprotect RO then RW: no endless refault', async (t) => {
    const va = await mm.mmap({ length: P, prot: RW });
    await mm.write(va, pattern(P, 7));
    await m2.migrateToDev(va, 1);
    await mm.mprotect(va, P, PROT_READ);
    await mm.mprotect(va, P, RW);
    const w = await m2.write(va, 1, pattern(P, 8));
    t.equal(w.cpages, 1, 'the write completes (it used to refault until the control call timed out)');
    t.same(await mm.read(va, P), pattern(P, 8), 'and the CPU sees it');
  });

  t.test('p2pUnmap is called for every exporter page an importer held', async (t) => {
    const ex = new BarExporter(kernel, 'exp');
    const a = await ex.mmap(mm, 3);
    const calls: string[] = [];
    // A spy around whatever the exporter's p2pUnmap does (its signature is the vm_ops one).
    const spied = ex as unknown as { p2pUnmap: (vma: Vma, imp: DeviceRef, start: number, end: number) => unknown };
    const orig = spied.p2pUnmap.bind(ex);
    spied.p2pUnmap = (vma, imp, start, end) => {
      calls.push(`${imp.name}:${(start - a.va) / P}-${(end - a.va) / P}`);
      return orig(vma, imp, start, end);
    };
    await m0.read(a.va, 3);
    t.same(calls, []);
    await mm.munmap(a.va, 3 * P);
    // Every held page is covered by a p2pUnmap (one call per held range, not per page).
    const pages = calls.flatMap((c) => {
      const [, r] = c.split(':');
      const [s, e] = r.split('-').map(Number);
      return Array.from({ length: e - s }, (_, i) => `m0:${s + i}`);
    });
    t.same(pages.sort(), ['m0:0', 'm0:1', 'm0:2'], 'every held page unmapped, after the ack');
    // Releasing the exporter's hold (slot users) is tested in test/drivers/p2p_unmap.test.ts.
  });
});
