/**
 * Migration of anonymous pages between system RAM and device-private
 * memory (RFC patch 4/5; HMM's migrate_vma).
 *
 * Mirrors mm/migrate_device.c: migrate_vma_setup() (collect + unmap, one
 * MMU_NOTIFY_MIGRATE invalidation whose owner is the destination/source
 * pgmap owner), the driver's copy, migrate_vma_pages() and
 * migrate_vma_finalize(); and lib/test_hmm.c's dmirror_migrate_to_device /
 * dmirror_migrate_to_system, with its checks (no VMA or unreadable VMA in
 * the range -> EINVAL).
 *
 * Order (the safety invariant needs the copy after the acks, or a device
 * write that was in flight could be lost or land on a freed page):
 *
 *   mm.lock held (no fault can be served meanwhile)
 *   collect the pages (migrate_vma_collect)
 *   invalidate(start, end, 'migrate', owner)  -> every importer acked
 *   and owner.ownerFlush(start, end)             and the owner's own TLB
 *                                                (both posted, then awaited)
 *   allocate the destination pages, copy     (the driver's alloc_and_copy)
 *   switch the PTEs                           (migrate_vma_pages)
 *   the owner's driver maps them              (dmirror_migrate_finalize_and_map:
 *                                              DevMem.ownerMap, to the device)
 *   free the source pages                     (migrate_vma_finalize:
 *                                              generation bump + poison)
 *
 * Whole ranges, not pages: destinations come from the allocator in as few
 * runs as it can, every run of pages consecutive on both sides is one copy,
 * and every run of freed pages is one free (one poison fill). A destination
 * is written once: copied over from its source, or cleared when there is
 * none (dmirror_migrate_alloc_and_copy: copy_highpage or clear_highpage;
 * alloc_page_vma for the way back does not zero either).
 */
import { PeerVmaError, type Errno } from '../errors.js';
import { PAGE_SIZE } from '../shm/constants.js';
import type { DevMem } from './devmem.js';
import type { DevMemRef } from './kernel_types.js';
import type { Mm } from './mm.js';
import { privatePte, ramPte, type Pte, type Vma } from './vma.js';
import { traceDev, TraceEvent, traceSink } from '../shm/trace_ring.js';

/** The VMAs covering [start, end), in order; EINVAL for a hole or a VMA that is not readable anonymous memory. */
function checkMigrateRange(mm: Mm, start: number, end: number): Vma[] {
  if (start % PAGE_SIZE !== 0 || end <= start) throw new PeerVmaError('EINVAL', mm.name, `migrate of [0x${start.toString(16)}, 0x${end.toString(16)}) is empty or unaligned`);
  const vmas: Vma[] = [];
  for (let va = start; va < end; ) {
    const v = mm.findVma(va);
    if (!v || !v.readable || !v.isAnon) {
      throw new PeerVmaError('EINVAL', `migrate of 0x${va.toString(16)} in ${mm.name}`, v ? `${v} is not readable anonymous memory` : 'the range has a hole (no VMA)');
    }
    vmas.push(v);
    va = v.end;
  }
  return vmas;
}

/**
 * migrate_vma_setup()'s unmap: one MMU_NOTIFY_MIGRATE invalidation of
 * [start, end) carrying `owner` (its own callback skips it), and the
 * owner's own flush (DevMem.ownerFlush) at the same time, so the two
 * devices' acks are awaited together rather than one round trip after
 * the other. Returns once every ack is in: nothing is copied before.
 */
async function invalidateForMigration(mm: Mm, start: number, end: number, owner: DevMemRef): Promise<void> {
  const own = owner.ownerFlush?.flushOwn(start, end);
  // Handled here too: it may fail while the invalidation is still awaited (it is rethrown below).
  own?.catch(() => undefined);
  try {
    await mm.invalidateLocked(start, end, 'migrate', owner, () => undefined);
  } finally {
    await own;
  }
}

/**
 * Copies page runs between two memories: page i of `src` (-1: no source,
 * the destination is cleared) to page i of `dst`. Each run of pages
 * consecutive on both sides is one copy (or one fill).
 */
function copyPageRuns(from: Uint8Array, src: ArrayLike<number>, to: Uint8Array, dst: ArrayLike<number>): void {
  const n = src.length;
  for (let i = 0; i < n; ) {
    let j = i + 1;
    if (src[i] < 0) {
      while (j < n && src[j] < 0 && dst[j] === dst[j - 1] + 1) j++;
      to.fill(0, dst[i] * PAGE_SIZE, (dst[i] + j - i) * PAGE_SIZE);
    } else {
      while (j < n && src[j] === src[j - 1] + 1 && dst[j] === dst[j - 1] + 1) j++;
      to.set(from.subarray(src[i] * PAGE_SIZE, (src[i] + j - i) * PAGE_SIZE), dst[i] * PAGE_SIZE);
    }
    i = j;
  }
}

/** What migrate_vma_setup() collected: the VA pages to move, and whether each VMA lets them be written. */
interface Collected {
  readonly vpns: number[];
  readonly write: boolean[];
}

/**
 * migrate_vma_collect_pmd() with MIGRATE_VMA_SELECT_SYSTEM: system pages
 * (present, zero or none) of private anonymous memory; shared anonymous
 * pages live in shmem's page cache and are not collected, nor are pages
 * held device-exclusive (upstream a non-present entry that is not
 * device-private: "Other special swap entries are not migratable").
 * A read-only present page stays read-only in device memory.
 */
function collectSystem(mm: Mm, vmas: readonly Vma[], start: number, end: number): Collected {
  const out: Collected = { vpns: [], write: [] };
  for (const v of vmas) {
    if (v.kind !== 'anon-private') continue;
    const v1 = Math.min(v.end, end) / PAGE_SIZE;
    for (let vpn = Math.max(v.start, start) / PAGE_SIZE; vpn < v1; vpn++) {
      const pte = mm.pt.get(vpn);
      if (pte?.kind === 'devprivate' || pte?.exclusive !== undefined) continue;
      out.vpns.push(vpn);
      // MIGRATE_PFN_WRITE from pte_write() for a present page; none or zero: the VMA's VM_WRITE (dmirror_migrate_alloc_and_copy).
      out.write.push(pte?.kind === 'ram' ? pte.write : v.writable);
    }
  }
  return out;
}

/**
 * dmirror_migrate_to_device()'s migrate_vma part: returns the pages
 * migrated. (The dmirror's `cpages` is what it can read back afterwards:
 * MirrorDriver.migrateToDev.)
 */
export async function migrateToDevice(mm: Mm, start: number, end: number, devmem: DevMem): Promise<number> {
  return mm.locked(() => migrateToDeviceLocked(mm, start, end, devmem));
}

/**
 * migrateToDevice under mm.lock. The body is a module function, not a
 * per-call closure (the arrow that calls it is tiny): V8 dropped the closure's optimized code between runs
 * and recompiled it (33-53 ms of TurboFan, everything inlined) inside
 * hmm-peer's p2p window every other run.
 */
async function migrateToDeviceLocked(mm: Mm, start: number, end: number, devmem: DevMem): Promise<number> {
  const { vpns, write } = collectSystem(mm, checkMigrateRange(mm, start, end), start, end);
  const n = vpns.length;
  if (n > devmem.freePages) throw new PeerVmaError('ENOMEM', `${devmem.owner.name} device memory`, `migrating ${n} pages, ${devmem.freePages} free`);
  await invalidateForMigration(mm, start, end, devmem);
  const k = mm.kernel;
  // The driver's alloc_and_copy: the source page of each (-1: none or the zero page).
  const src = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const old = mm.pt.get(vpns[i]);
    src[i] = old?.kind === 'ram' ? old.pfn : -1;
  }
  const dst = devmem.allocPages(n);
  copyPageRuns(k.ramBytes, src, devmem.bytes, dst);
  // migrate_vma_pages(): the PTEs become device-private entries.
  for (let i = 0; i < n; i++) {
    mm.pt.set(vpns[i], privatePte(devmem, dst[i], write[i]));
    devmem.rmap.set(dst[i], { mm, va: vpns[i] * PAGE_SIZE });
  }
  // dmirror_migrate_finalize_and_map(): the owner's driver installs the new pages in its device's TLB.
  await devmem.ownerMap?.(mm, vpns);
  // migrate_vma_finalize(): the system pages are freed (after the acks above).
  k.ram.freePageList(src.filter((p) => p >= 0));
  traceSink.w?.instant(TraceEvent.Migrate, traceDev(devmem.owner.name), n, 1);
  return n;
}

/**
 * dmirror_migrate_to_system(): device-private pages of [start, end) back to
 * RAM — those of `owner` only when given (migrate_vma's pgmap_owner, as the
 * dmirror passes its own device), else of any device. Returns the pages
 * moved (dmirror_successful_migrated_pages).
 */
export async function migrateToSystem(mm: Mm, start: number, end: number, owner: DevMem | null = null): Promise<number> {
  return mm.locked(async () => {
    checkMigrateRange(mm, start, end);
    const r = await migrateToRamLocked(mm, start, end, owner);
    if (typeof r === 'string') throw new PeerVmaError(r, mm.name, 'out of system RAM while migrating back');
    return r;
  });
}

type PrivatePte = Extract<Pte, { kind: 'devprivate' }>;

/** The device-private PTEs of [start, end) (of `only`, or of any owner), grouped by owner. */
function collectPrivate(mm: Mm, start: number, end: number, only: DevMem | null): Map<PrivatePte['devmem'], { vpns: number[]; ptes: PrivatePte[] }> {
  const byOwner = new Map<PrivatePte['devmem'], { vpns: number[]; ptes: PrivatePte[] }>();
  for (let vpn = start / PAGE_SIZE; vpn < end / PAGE_SIZE; vpn++) {
    const pte = mm.pt.get(vpn);
    if (pte?.kind !== 'devprivate' || (only !== null && pte.devmem !== only)) continue;
    let g = byOwner.get(pte.devmem);
    if (!g) byOwner.set(pte.devmem, (g = { vpns: [], ptes: [] }));
    g.vpns.push(vpn);
    g.ptes.push(pte);
  }
  return byOwner;
}

/**
 * Core of migrate_to_ram: every device-private page of [start, end) (of
 * `only`, or of any owner) moves to a new RAM page. Caller holds mm.lock.
 * Returns the pages moved or ENOMEM.
 */
export async function migrateToRamLocked(mm: Mm, start: number, end: number, only: DevMem | null): Promise<number | Errno> {
  mm.lock.assertWriteHeld();
  const byOwner = collectPrivate(mm, start, end, only);
  let total = 0;
  for (const g of byOwner.values()) total += g.vpns.length;
  if (total === 0) return 0;
  if (total > mm.kernel.ram.freePages) return 'ENOMEM';
  // One invalidation per owner, each carrying its owner (the owner skips it
  // in its callback and flushes itself).
  for (const o of byOwner.keys()) await invalidateForMigration(mm, start, end, o);
  const k = mm.kernel;
  for (const [o, { vpns, ptes }] of byOwner) {
    const pages = ptes.map((p) => p.page);
    const pfns = k.ram.allocPageList(pages.length);
    copyPageRuns(o.bytes, pages, k.ramBytes, pfns);
    for (let i = 0; i < vpns.length; i++) mm.pt.set(vpns[i], ramPte(pfns[i], ptes[i].write));
    o.freePageList(pages);
  }
  traceSink.w?.instant(TraceEvent.Migrate, traceDev(byOwner.keys().next().value!.owner.name), total, 0);
  return total;
}
