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
 *   invalidate(start, end, 'migrate', owner)  -> every importer acked
 *   owner.ownerFlush(start, end)              -> the owner's own TLB too
 *   copy each page, switch the PTE
 *   free the source pages (generation bump + poison)
 */
import { PeerVmaError, type Errno } from '../errors.js';
import { PAGE_SIZE } from '../shm/constants.js';
import type { DevMem } from './devmem.js';
import type { Mm } from './mm.js';
import type { Pte } from './vma.js';
import { traceDev, TraceEvent, traceSink } from '../shm/trace_ring.js';

function checkMigrateRange(mm: Mm, start: number, end: number): void {
  if (start % PAGE_SIZE !== 0 || end <= start) throw new PeerVmaError('EINVAL', mm.name, `migrate of [0x${start.toString(16)}, 0x${end.toString(16)}) is empty or unaligned`);
  for (let va = start; va < end; va += PAGE_SIZE) {
    const v = mm.findVma(va);
    if (!v || !v.readable || !v.isAnon) {
      throw new PeerVmaError('EINVAL', `migrate of 0x${va.toString(16)} in ${mm.name}`, v ? `${v} is not readable anonymous memory` : 'the range has a hole (no VMA)');
    }
  }
}

/**
 * dmirror_migrate_to_device()'s migrate_vma part: returns the pages
 * migrated. (The dmirror's `cpages` is what it can read back afterwards:
 * MirrorDriver.migrateToDev.)
 */
export async function migrateToDevice(mm: Mm, start: number, end: number, devmem: DevMem): Promise<number> {
  return mm.locked(async () => {
    checkMigrateRange(mm, start, end);
    const vpns: number[] = [];
    for (let va = start; va < end; va += PAGE_SIZE) {
      const pte = mm.pt.get(va / PAGE_SIZE);
      // MIGRATE_VMA_SELECT_SYSTEM: system pages (present, zero or none) of
      // private anonymous memory; shared anonymous pages live in shmem's
      // page cache and are not collected (migrate_vma_collect_pmd).
      if (pte?.kind !== 'devprivate' && mm.findVma(va)!.kind === 'anon-private') vpns.push(va / PAGE_SIZE);
    }
    if (vpns.length > devmem.freePages) throw new PeerVmaError('ENOMEM', `${devmem.owner.name} device memory`, `migrating ${vpns.length} pages, ${devmem.freePages} free`);
    await mm.invalidateLocked(start, end, 'migrate', devmem, () => undefined);
    await devmem.ownerFlush?.(start, end);
    const freed: Pte[] = [];
    const k = mm.kernel;
    for (const vpn of vpns) {
      const old = mm.pt.get(vpn);
      const page = devmem.allocPage();
      if (old?.kind === 'ram') {
        devmem.bytes.set(k.ramBytes.subarray(old.pfn * PAGE_SIZE, (old.pfn + 1) * PAGE_SIZE), page * PAGE_SIZE);
        freed.push(old);
      }
      const vma = mm.findVma(vpn * PAGE_SIZE)!;
      mm.pt.set(vpn, { kind: 'devprivate', devmem, page, write: vma.writable });
      devmem.rmap.set(page, { mm, va: vpn * PAGE_SIZE });
    }
    mm.freePtes(freed);
    traceSink.w?.instant(TraceEvent.Migrate, traceDev(devmem.owner.name), vpns.length, 1);
    return vpns.length;
  });
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

/**
 * Core of migrate_to_ram: every device-private page of [start, end) (of
 * `only`, or of any owner) moves to a new RAM page. Caller holds mm.lock.
 * Returns the pages moved or ENOMEM.
 */
export async function migrateToRamLocked(mm: Mm, start: number, end: number, only: DevMem | null): Promise<number | Errno> {
  mm.lock.assertHeld();
  const moves: { vpn: number; pte: Extract<Pte, { kind: 'devprivate' }> }[] = [];
  for (let va = start; va < end; va += PAGE_SIZE) {
    const pte = mm.pt.get(va / PAGE_SIZE);
    if (pte?.kind === 'devprivate' && (only === null || pte.devmem === only)) moves.push({ vpn: va / PAGE_SIZE, pte });
  }
  if (moves.length === 0) return 0;
  if (moves.length > mm.kernel.ram.freePages) return 'ENOMEM';
  const owners = new Set(moves.map((m) => m.pte.devmem));
  // One invalidation per owner, each carrying its owner (the owner skips it
  // in its callback and flushes itself).
  for (const o of owners) {
    await mm.invalidateLocked(start, end, 'migrate', o, () => undefined);
    await o.ownerFlush?.(start, end);
  }
  const k = mm.kernel;
  for (const { vpn, pte } of moves) {
    const pfn = mm.allocRamPage();
    k.ramBytes.set(pte.devmem.bytes.subarray(pte.page * PAGE_SIZE, (pte.page + 1) * PAGE_SIZE), pfn * PAGE_SIZE);
    mm.pt.set(vpn, { kind: 'ram', pfn, write: pte.write });
    pte.devmem.freePage(pte.page);
  }
  traceSink.w?.instant(TraceEvent.Migrate, traceDev(moves[0].pte.devmem.owner.name), moves.length, 0);
  return moves.length;
}
