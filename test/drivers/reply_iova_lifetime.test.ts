// With the IOMMU on, an IOVA a page request reply handed out stays mapped
// until an invalidation of its VA page is acked (ImporterBinding.iovaFor,
// flushLocked), whatever later replies carry for the same page. With page
// request groups (src/shm/tlb_layout.ts) the kernel answers a fault before
// the prefetch posted ahead of it; when their windows overlap, the second
// reply used to unmap the IOVA the first had just handed out, and the device,
// which installed the first reply and was never told to stop using it, met
// an IOMMU fault ('IOVA not mapped', 0.5-3% of small IOMMU-on stress runs:
// test/drivers/iommu_flush_order.test.ts). Here the test plays the device:
// it writes both requests into the mirror's mailbox itself and reads the
// replies and the domain's page table.
import t from 'tap';
import { PROT_READ, PROT_WRITE } from '../../src/kernel/mm.js';
import { PAGE_SIZE } from '../../src/shm/constants.js';
import { IOMMU_READ, IOMMU_WRITE, IOVA_BASE, IommuPte, iommuPteWord } from '../../src/shm/iommu_layout.js';
import { loadU64, storeU64 } from '../../src/shm/layout.js';
import { PageRequest, priGroup, PriMailbox, ReplyEntry } from '../../src/shm/tlb_layout.js';
import { BarExporter } from '../../src/drivers/bar_exporter.js';
import { MirrorDriver } from '../../src/drivers/mirror_driver.js';
import { DeviceError } from '../../src/errors.js';
import { allP2p } from '../../src/kernel/p2p_map.js';
import { kernelMachine, MiB, mirrorSpec, openMirrors, pattern } from '../fixtures/kernel_machine.js';
import { until } from '../fixtures/until.js';

/** The device's side of the mailbox, as DeviceTlb.post writes it. */
function device(d: MirrorDriver) {
  const pri = d['pri'];
  let seq = Atomics.load(pri, PriMailbox.bell);
  return {
    /** Writes a dense request into group `g` (not rung yet); returns its sequence. */
    write(g: number, va: number, npages: number, write: boolean, ahead: boolean): number {
      const p = priGroup(pri, g);
      storeU64(p, PageRequest.reqStart, va);
      p[PageRequest.reqPages] = npages;
      p[PageRequest.reqWrite] = write ? 1 : 0;
      p[PageRequest.reqHint] = ahead ? 1 : 0;
      p[PageRequest.reqSparse] = 0;
      seq = (seq + 1) | 0;
      Atomics.store(p, PageRequest.reqSeq, seq);
      return seq;
    },
    ring(): void {
      Atomics.store(pri, PriMailbox.bell, seq);
      Atomics.notify(pri, PriMailbox.bell);
    },
    async answered(g: number, s: number): Promise<void> {
      await until(`group ${g}'s reply to request ${s}`, () => Atomics.load(priGroup(pri, g), PageRequest.replySeq) === s);
    },
    /** Entry `i` of group `g`'s reply: its device address (an IOVA) and errno. */
    iova(g: number, i: number): number {
      const p = priGroup(pri, g);
      if (p[PageRequest.replyErrno] !== 0) throw new Error(`group ${g}: errno ${p[PageRequest.replyErrno]}`);
      return loadU64(p, PageRequest.entries + i * ReplyEntry.kFieldCount + ReplyEntry.devAddr);
    },
  };
}

/** The IOMMU permission bits of `iova` in `d`'s domain (0: not mapped). */
function perm(d: MirrorDriver, iova: number): number {
  const view = new Int32Array(d.domain!.sab);
  return Atomics.load(view, iommuPteWord((iova - IOVA_BASE) / PAGE_SIZE) + IommuPte.perm);
}

t.test('a fault answered before the overlapping prefetch posted ahead of it: both replies stay usable', async (t) => {
  const { kernel } = await kernelMachine(t, [mirrorSpec('m0')], { check: true, iommu: true });
  const mm = kernel.createMm();
  const [d0] = await openMirrors(t, kernel, mm, ['m0']);
  const va = await mm.mmap({ length: 4 * PAGE_SIZE, prot: PROT_READ | PROT_WRITE });
  await mm.write(va, pattern(4 * PAGE_SIZE, 3));
  const dev = device(d0);
  // The prefetch of page 1 (group 0), then the fault of pages 0-1 (group 1), rung together: the fault is answered first.
  const sPre = dev.write(0, va + PAGE_SIZE, 1, false, true);
  const sFault = dev.write(1, va, 2, false, false);
  const served: number[] = [];
  d0.onFault = (_e, start) => served.push(start);
  dev.ring();
  await dev.answered(1, sFault);
  await dev.answered(0, sPre);
  t.same(served, [va, va + PAGE_SIZE], 'the fault was answered before the prefetch');
  const first = dev.iova(1, 1);
  const second = dev.iova(0, 0);
  t.not(perm(d0, first), 0, 'the IOVA the fault reply handed out for page 1 is still mapped after the prefetch reply (no invalidation came)');
  t.equal(second, first, 'the prefetch reply hands out the same IOVA: it still maps the page');
  t.not(perm(d0, dev.iova(1, 0)), 0);

  await mm.revokeRange(va, va + 2 * PAGE_SIZE, null);
  t.equal(perm(d0, first), 0, 'once the device acked the invalidation of pages 0-1, their IOVAs are unmapped');
  t.equal(perm(d0, dev.iova(1, 0)), 0);
  t.equal(d0.violations().count, 0);
  t.equal(d0.domain!.faults().count, 0);
});

t.test('a page answered read-only, then for a write: the read-only IOVA lives until the page is invalidated', async (t) => {
  const { kernel } = await kernelMachine(t, [mirrorSpec('m0')], { check: true, iommu: true });
  const mm = kernel.createMm();
  const [d0] = await openMirrors(t, kernel, mm, ['m0']);
  const va = await mm.mmap({ length: 2 * PAGE_SIZE, prot: PROT_READ | PROT_WRITE });
  await mm.write(va, pattern(2 * PAGE_SIZE, 5));
  // Its PTE read-only in a writable VMA: a write fault makes it writable with no invalidation (raising protection).
  // Made the upstream way: an mprotect leaves the page's device-private entry read-only, and the CPU's fault
  // brings it back as a read-only RAM PTE (then mprotect(RW) makes RAM PTEs writable: change_pte_range).
  await d0.migrateToDev(va, 1);
  await mm.mprotect(va, 2 * PAGE_SIZE, PROT_READ);
  await mm.mprotect(va, 2 * PAGE_SIZE, PROT_READ | PROT_WRITE);
  await mm.read(va, 4);
  t.equal(mm.pt.get(va / PAGE_SIZE)?.write, false, 'read-only RAM PTE');
  const dev = device(d0);
  const sRead = dev.write(0, va, 1, false, false);
  dev.ring();
  await dev.answered(0, sRead);
  const ro = dev.iova(0, 0);
  t.equal(perm(d0, ro), IOMMU_READ, 'the read reply maps the page read-only');
  const sent = kernel.invalidator('m0').stats.sent;
  const sWrite = dev.write(1, va, 1, true, false);
  dev.ring();
  await dev.answered(1, sWrite);
  const rw = dev.iova(1, 0);
  t.equal(perm(d0, rw), IOMMU_READ | IOMMU_WRITE, 'the write reply maps it writable, at another IOVA');
  t.equal(kernel.invalidator('m0').stats.sent, sent, 'no invalidation told the device to stop using the read-only reply');
  t.equal(perm(d0, ro), IOMMU_READ, 'so its IOVA is still mapped');
  const mapped = d0.domain!.mapped;
  const sAgain = dev.write(0, va, 1, false, false);
  dev.ring();
  await dev.answered(0, sAgain);
  t.ok([ro, rw].includes(dev.iova(0, 0)), 'a third answer for the page hands out one of its two IOVAs');
  t.equal(d0.domain!.mapped, mapped, 'and maps nothing new');
  await mm.revokeRange(va, va + PAGE_SIZE, null);
  t.equal(perm(d0, rw), 0, 'both unmapped once the invalidation of the page was acked');
  t.equal(perm(d0, ro), 0);
  t.equal(d0.domain!.faults().count, 0);
});

/** m0 behind an IOMMU, and a 2-page VMA of exp's BAR in a fresh process (the BAR tests below). */
async function barSetup(t: { teardown(fn: () => unknown): void }) {
  const { kernel, machine } = await kernelMachine(t, [mirrorSpec('m0'), mirrorSpec('exp', 1 * MiB, 64 * 1024)], { check: true, iommu: ['m0'], policy: allP2p });
  const mm = kernel.createMm();
  const ex = new BarExporter(kernel, 'exp', { importers: '*', readOnly: false, requireIommu: false, cpuMappable: false });
  return { kernel, machine, mm, ex, bar: await ex.mmap(mm, 2) };
}

// Through a peer's BAR the reply's access follows the request, not the PTE
// (hmm.ts: a p2p entry is writable only for a write request), so a page
// answered read, write, read alternates kinds; the third answer must hand
// out the read-only IOVA the first one mapped (IovaTable.olderOf), or every
// alternation would map one more IOVA until the page is invalidated.
t.test('a BAR page answered read, write, read: at most one IOVA per access kind', async (t) => {
  const { kernel, mm, bar } = await barSetup(t);
  const [d0] = await openMirrors(t, kernel, mm, ['m0']);
  const { va } = bar;
  const dev = device(d0);
  const answer = async (g: number, write: boolean): Promise<number> => {
    const s = dev.write(g, va, 1, write, false);
    dev.ring();
    await dev.answered(g, s);
    return dev.iova(g, 0);
  };
  const ro = await answer(0, false);
  t.equal(perm(d0, ro), IOMMU_READ, 'the read reply maps the BAR page read-only');
  const rw = await answer(1, true);
  t.equal(perm(d0, rw), IOMMU_READ | IOMMU_WRITE, 'the write reply maps it writable, at another IOVA');
  t.not(rw, ro);
  const mapped = d0.domain!.mapped;
  t.equal(await answer(0, false), ro, 'the second read answer hands out the first read-only IOVA again');
  t.equal(await answer(1, true), rw, 'and the second write answer the writable one');
  t.equal(d0.domain!.mapped, mapped, 'nothing new mapped');
  await mm.revokeRange(va, va + PAGE_SIZE, null);
  t.equal(perm(d0, ro), 0, 'both unmapped once the invalidation of the page was acked');
  t.equal(perm(d0, rw), 0);
  t.equal(d0.domain!.faults().count, 0);
});

// dmirror_fops_release() leaves nothing mapped: the domain outlives the
// binding (one per device), so IOVAs left in it would keep pointing at pages
// the process may free, and an exporter would keep holds nobody releases.
t.test('close() unmaps every IOVA the binding still holds and releases its exporter holds', async (t) => {
  const { kernel, mm, ex, bar } = await barSetup(t);
  const d0 = await MirrorDriver.open(kernel, 'm0', mm);
  const ram = await mm.mmap({ length: 2 * PAGE_SIZE, prot: PROT_READ | PROT_WRITE });
  await mm.write(ram, pattern(2 * PAGE_SIZE, 9));
  await d0.read(ram, 2);
  await d0.read(bar.va, 2);
  const dom = d0.domain!;
  t.equal(dom.mapped, 4, 'two RAM pages and two BAR pages mapped in the domain');
  t.equal(ex.barManager.holdersOf(ex.pageOf(bar.vma, 0)), 1, 'the exporter holds a slot for m0');
  await d0.close();
  t.equal(dom.mapped, 0, 'close unmapped them all');
  t.equal(ex.barManager.holdersOf(ex.pageOf(bar.vma, 0)), 0, 'and released the exporter hold');
  t.equal(dom.faults().count, 0);
});

// A device that failed without detaching may still run (a control call
// timed out): close() must not hand its exporter slots to someone else nor
// free its IOVAs for reuse; it keeps them and says so.
t.test('close() of a device that failed keeps its IOVAs and exporter holds', async (t) => {
  const { kernel, machine, mm, ex, bar } = await barSetup(t);
  const d0 = await MirrorDriver.open(kernel, 'm0', mm);
  await d0.read(bar.va, 2);
  const dom = d0.domain!;
  t.equal(dom.mapped, 2);
  machine.device('m0').handle.fail(new DeviceError('m0', 'timeout', 'test: a control call timed out'));
  await d0.close();
  t.equal(dom.mapped, 2, 'its IOVAs stay mapped (and are never reused)');
  t.equal(ex.barManager.holdersOf(ex.pageOf(bar.vma, 0)), 1, 'the exporter still holds the slot for it');
  t.match(kernel.log.join('\n'), /m0: closed without a detach \(the device failed\)/);
});
