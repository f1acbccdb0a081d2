// hmm_range_fault() flags per mm/hmm.c: holes (no VMA) give HMM_PFN_ERROR to
// a snapshot and EFAULT to a fault; request flags are read per page, in
// device-special VMAs too; REQ_WRITE without REQ_FAULT asks nothing.
import t from 'tap';
import { PAGE_SIZE } from '../../src/shm/constants.js';
import { BarExporter } from '../../src/drivers/bar_exporter.js';
import { HMM_PFN_ERROR, HMM_PFN_P2P, HMM_PFN_REQ_FAULT, HMM_PFN_REQ_WRITE, HMM_PFN_VALID, HMM_PFN_WRITE, HmmPfns, hmmRangeFault, type HmmRange } from '../../src/kernel/hmm.js';
import { PROT_READ, PROT_WRITE, type Mm } from '../../src/kernel/mm.js';
import { MIRROR_PROT, type MirrorDriver } from '../../src/drivers/mirror_driver.js';
import { allP2p } from '../../src/kernel/p2p_map.js';
import { KiB, kernelMachine, MiB, mirrorSpec, openMirrors } from '../fixtures/kernel_machine.js';

async function walk(mm: Mm, d: MirrorDriver, start: number, npages: number, defaultFlags: number, reqFlags?: number[]): Promise<{ r: string | 0; flags: number[] }> {
  const range: HmmRange = { notifier: d.notifier, notifierSeq: await d.notifier.readBegin(), start, end: start + npages * PAGE_SIZE, defaultFlags, reqFlags: reqFlags ? Uint8Array.from(reqFlags) : undefined, devPrivateOwner: d.devmem, importer: d.ref, pfns: new HmmPfns(npages) };
  const r = await mm.locked(() => hmmRangeFault(mm, range));
  return { r, flags: [...range.pfns.flags] };
}

t.test('hmm_range_fault flags', async (t) => {
  const { kernel } = await kernelMachine(t, [mirrorSpec('m0'), mirrorSpec('exp', 1 * MiB, 64 * KiB)], { policy: allP2p });
  const mm = kernel.createMm();
  const [d0] = await openMirrors(t, kernel, mm, ['m0']);

  t.test('a hole: HMM_PFN_ERROR for a snapshot, EFAULT for a fault', async (t) => {
    const va = await mm.mmap({ length: 3 * PAGE_SIZE, prot: PROT_READ | PROT_WRITE });
    await mm.write(va, new Uint8Array(PAGE_SIZE).fill(1));
    await mm.munmap(va + PAGE_SIZE, PAGE_SIZE);
    const s = await walk(mm, d0, va, 3, 0);
    t.equal(s.r, 0);
    t.same(s.flags, [HMM_PFN_VALID | HMM_PFN_WRITE, HMM_PFN_ERROR, 0], 'present, hole, not present');
    t.equal((await walk(mm, d0, va, 3, 0, [0, HMM_PFN_REQ_FAULT, 0])).r, 'EFAULT', 'a fault asked on the hole');
    t.equal((await walk(mm, d0, va, 3, 0, [HMM_PFN_REQ_WRITE, HMM_PFN_REQ_WRITE, 0])).r, 0, 'REQ_WRITE alone asks no fault');
  });

  t.test('device-special VMA: request flags per page', async (t) => {
    const ex = new BarExporter(kernel, 'exp', { importers: '*', readOnly: false, requireIommu: false, cpuMappable: false });
    const { va } = await ex.mmap(mm, 4);
    const s = await walk(mm, d0, va, 4, 0, [HMM_PFN_REQ_FAULT, 0, HMM_PFN_REQ_FAULT | HMM_PFN_REQ_WRITE, HMM_PFN_REQ_FAULT | HMM_PFN_REQ_WRITE]);
    t.equal(s.r, 0);
    t.same(s.flags, [HMM_PFN_VALID | HMM_PFN_P2P, HMM_PFN_ERROR, HMM_PFN_VALID | HMM_PFN_P2P | HMM_PFN_WRITE, HMM_PFN_VALID | HMM_PFN_P2P | HMM_PFN_WRITE], 'read map, snapshot (VM_PFNMAP: error), write map x2');
    t.equal(ex.mapCalls, 2, 'one p2pMap per run of equal requests');
    const snap = await walk(mm, d0, va, 4, 0);
    t.same(snap.flags, [HMM_PFN_ERROR, HMM_PFN_ERROR, HMM_PFN_ERROR, HMM_PFN_ERROR], 'a snapshot of a device VMA shows nothing');
    await mm.munmap(va, 4 * PAGE_SIZE);
  });
});

// mm/hmm.c hmm_vma_handle_pte(): a device-exclusive entry is not present
// (a swap entry); a snapshot reports 0 for it ("if (!required_fault) goto
// out"), and only a fault (which restores the page) reports it VALID.
// Reporting it VALID to a snapshot showed a page the CPU cannot use as mapped.
t.test('device-exclusive page: not present to a snapshot, restored by a fault', async (t) => {
  const { kernel } = await kernelMachine(t, [mirrorSpec('m0')]);
  const mm = kernel.createMm();
  const [d0] = await openMirrors(t, kernel, mm, ['m0']);
  const va = await mm.mmap({ length: 2 * PAGE_SIZE, prot: PROT_READ | PROT_WRITE });
  await mm.write(va, new Uint8Array(2 * PAGE_SIZE).fill(7));
  t.equal((await d0.exclusive(va, 1)).cpages, 1);
  const s = await walk(mm, d0, va, 2, 0);
  t.equal(s.r, 0);
  t.same(s.flags, [0, HMM_PFN_VALID | HMM_PFN_WRITE], 'exclusive page: nothing; its neighbour: present');
  t.same([...(await d0.snapshot(va, 2)).prot], [MIRROR_PROT.NONE, MIRROR_PROT.WRITE], 'HMM_DMIRROR_SNAPSHOT says the same');
  // Restoring invalidates the page (MMU_NOTIFY_EXCLUSIVE), our notifier too: EBUSY, as upstream's
  // check_retry after hmm_vma_fault; the caller's retry then sees a plain RAM page.
  t.equal((await walk(mm, d0, va, 1, HMM_PFN_REQ_FAULT)).r, 'EBUSY', 'the restore collided with this walk');
  const f = await walk(mm, d0, va, 1, HMM_PFN_REQ_FAULT);
  t.equal(f.r, 0);
  t.same(f.flags, [HMM_PFN_VALID | HMM_PFN_WRITE], 'the retry reports it');
  t.equal(mm.pt.get(va / PAGE_SIZE)?.exclusive, undefined, 'no longer exclusive');
});

// mm/mprotect.c change_pte_range(): a writable device-private entry becomes
// readable on any protection change (make_readable_device_private_entry),
// even to PROT_READ|PROT_WRITE; an exclusive anonymous RAM page becomes
// writable again when write comes back (MM_CP_TRY_CHANGE_WRITABLE,
// can_change_pte_writable); the zero page stays read-only. Seen through
// hmm_range_fault snapshots (HMM_DMIRROR_SNAPSHOT).
t.test('PTE write bits after mprotect, as change_pte_range leaves them', async (t) => {
  const { kernel } = await kernelMachine(t, [mirrorSpec('m0')]);
  const mm = kernel.createMm();
  const [d0] = await openMirrors(t, kernel, mm, ['m0']);
  const RW = PROT_READ | PROT_WRITE;
  const va = await mm.mmap({ length: 3 * PAGE_SIZE, prot: RW });
  await mm.write(va, new Uint8Array(2 * PAGE_SIZE).fill(3)); // pages 0-1 RAM, written
  await mm.read(va + 2 * PAGE_SIZE, 4); // page 2: the zero page
  t.equal((await d0.migrateToDev(va + PAGE_SIZE, 1)).cpages, 1, 'page 1 to device memory');
  const P = MIRROR_PROT;
  t.same([...(await d0.snapshot(va, 3)).prot], [P.WRITE, P.DEV_PRIVATE_LOCAL | P.WRITE, P.ZERO | P.READ], 'before');
  await mm.mprotect(va, 3 * PAGE_SIZE, PROT_READ);
  t.same([...(await d0.snapshot(va, 3)).prot], [P.READ, P.DEV_PRIVATE_LOCAL | P.READ, P.ZERO | P.READ], 'read-only');
  await mm.mprotect(va, 3 * PAGE_SIZE, RW);
  t.same([...(await d0.snapshot(va, 3)).prot], [P.WRITE, P.DEV_PRIVATE_LOCAL | P.READ, P.ZERO | P.READ], 'RAM writable again, the device-private entry stays read-only');
  // The device can still write all of it: its own read-only page migrates back first (hmm.ts), the zero page is replaced.
  const w = await d0.write(va, 3, new Uint8Array(3 * PAGE_SIZE).fill(9));
  t.equal(w.cpages, 3);
  t.same([...(await mm.read(va, 3 * PAGE_SIZE))].every((b) => b === 9), true, 'what the device wrote');
  // A writable device-private entry, then an mprotect that changes nothing (mprotect_fixup: newflags ==
  // oldflags returns before change_protection): no invalidation, the entry stays writable.
  t.equal((await d0.migrateToDev(va + PAGE_SIZE, 1)).cpages, 1);
  t.same([...(await d0.snapshot(va + PAGE_SIZE, 1)).prot], [P.DEV_PRIVATE_LOCAL | P.WRITE]);
  const seq = mm.notifiers.invalidateSeq;
  await mm.mprotect(va, 3 * PAGE_SIZE, RW);
  t.equal(mm.notifiers.invalidateSeq, seq, 'mprotect(RW) of an RW mapping: no invalidation');
  t.same([...(await d0.snapshot(va, 2)).prot], [P.WRITE, P.DEV_PRIVATE_LOCAL | P.WRITE], 'mprotect(RW) of an RW mapping leaves the entries as they were');
});

// mm/migrate_device.c migrate_vma_collect_pmd(): MIGRATE_PFN_WRITE comes from
// pte_write() of a present page (the VMA's VM_WRITE only for none / zero
// pages, dmirror_migrate_alloc_and_copy), so a read-only RAM PTE in a
// writable VMA migrates to a read-only device-private entry.
t.test('migrate keeps a present page read-only', async (t) => {
  const { kernel } = await kernelMachine(t, [mirrorSpec('m0'), mirrorSpec('m1')]);
  const mm = kernel.createMm();
  const [d0, d1] = await openMirrors(t, kernel, mm, ['m0', 'm1']);
  const RW = PROT_READ | PROT_WRITE;
  const va = await mm.mmap({ length: 2 * PAGE_SIZE, prot: RW });
  await mm.write(va, new Uint8Array(PAGE_SIZE).fill(4)); // page 0 RAM; page 1 none
  // A read-only RAM PTE in a writable VMA: via a device-private entry an mprotect made read-only.
  await d1.migrateToDev(va, 1);
  await mm.mprotect(va, 2 * PAGE_SIZE, PROT_READ);
  await mm.mprotect(va, 2 * PAGE_SIZE, RW);
  await mm.read(va, 4);
  t.equal(mm.pt.get(va / PAGE_SIZE)?.write, false, 'page 0: read-only RAM PTE');
  t.equal((await d0.migrateToDev(va, 2)).cpages, 2);
  const P = MIRROR_PROT;
  t.same([...(await d0.snapshot(va, 2)).prot], [P.DEV_PRIVATE_LOCAL | P.READ, P.DEV_PRIVATE_LOCAL | P.WRITE], 'read-only stays read-only; pte_none takes VM_WRITE');
});
