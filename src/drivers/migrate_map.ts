/**
 * Driver-installed translations after a migration to the device:
 * lib/test_hmm.c's dmirror_migrate_finalize_and_map(), which stores every
 * page dmirror_migrate_to_device() just migrated into the dmirror's own
 * page table (dmirror->pt) under the driver mutex, so the device reads
 * them without a fault. Here the device's page table is its TLB in the
 * worker: the driver posts the entries a page request would have got (the
 * owner's own device-private pages, hmm's dev_private_owner rule) into the
 * DriverMap mailbox (src/shm/driver_map_layout.ts), and the device
 * installs them before its next page request or invalidation.
 *
 * Upstream needs no sequence check (the pages are still locked as
 * migration entries). Our driver lock is taken across an await, so a
 * revoke could run in between: the post is checked like a fault reply
 *
 *   win = interval notifier over [start, end); seq = win.readBegin()
 *   build the entries from the PTEs        (mm.lock held by the migration)
 *   driver lock; win.readRetry(seq)?       -> post nothing (the device faults)
 *   record the range as translated         (later migrations and flushes
 *                                           reach the device: holdsNothingIn)
 *   write entries; Atomics.store(postSeq); unlock
 *
 * [Required: an invalidation that overlaps [start, end) after readBegin
 *  leaves no entry of it posted; one after the post is served by the
 *  device after installing the post (DeviceTlb.drop), so it drops them.]
 *
 * Best effort: a post takes as many free slots of the ring as its span
 * needs (MAP_PAGES pages each), counted under the driver lock (postSeq's
 * only writer; freeMapSlots clamps the device-written doneSeq); pages past
 * the free slots are not posted and fault as before. The slots free up as
 * the device installs them, so a driver migrating chunk after chunk while
 * the device works on the previous one keeps posting (hmm-peer's own
 * pipeline, not upstream's: dmirror_migrate_to_device has no device
 * working while it migrates).
 */
import { PAGE_SIZE } from '../shm/constants.js';
import { DriverMap, freeMapSlots, MAP_PAGES, MAP_SLOTS, mapSlot, MapSlot } from '../shm/driver_map_layout.js';
import { storeU64 } from '../shm/layout.js';
import { ReplyEntry } from '../shm/tlb_layout.js';
import { HMM_PFN_DEVICE_PRIVATE, HMM_PFN_VALID, HMM_PFN_WRITE } from '../shm/hmm_pfn.js';
import type { DevMem } from '../kernel/devmem.js';
import type { DriverLock } from '../kernel/driver_lock.js';
import type { Mm } from '../kernel/mm.js';
import type { IntervalNotifierOps } from '../kernel/mmu_notifier.js';

/** What the binding lends the post: its process, lock, device memory, mailbox and its record of what the device holds. */
export interface MapTarget {
  readonly name: string;
  readonly mm: Mm;
  readonly lock: DriverLock;
  readonly devmem: DevMem;
  readonly map: Int32Array;
  /** Notes [start, end) as translated by the device (lock held). */
  recordTranslated(start: number, end: number): void;
  /** Test seam: runs after readBegin, before the driver lock (a racing invalidation goes here). */
  readonly beforeLock: (() => Promise<void> | void) | null;
}

/** Any invalidation of the window voids the post (mmu_interval_set_seq). */
const windowOps: IntervalNotifierOps = {
  invalidate(sub, _range, curSeq) {
    sub.setSeq(curSeq);
    return true;
  },
};

/**
 * Posts the device's entries for the migrated VA pages `vpns` (ascending;
 * caller holds mm.lock, the PTEs already switched). Returns the pages
 * posted (0: none, the device faults them).
 */
export async function postMigrated(t: MapTarget, vpns: readonly number[]): Promise<number> {
  const m = t.map;
  // Fast path only: the free slots are counted again under the driver lock, after the awaits below.
  if (vpns.length === 0 || freeMapSlots(m) === 0) return 0;
  const v0 = vpns[0];
  // The window covers the most the ring could take; the post takes what is free under the lock.
  const most = Math.min(MAP_SLOTS * MAP_PAGES, vpns[vpns.length - 1] - v0 + 1);
  const start = v0 * PAGE_SIZE;
  const win = t.mm.notifiers.insert(start, most * PAGE_SIZE, windowOps, `${t.name} migrate map`);
  try {
    const seq = await win.readBegin();
    await t.beforeLock?.();
    await t.lock.lock();
    try {
      if (win.readRetry(seq)) return 0;
      // postSeq's only writer is here, under the lock (freeMapSlots: the single-writer rule).
      const span = Math.min(freeMapSlots(m) * MAP_PAGES, most);
      if (span === 0) return 0;
      t.recordTranslated(start, start + span * PAGE_SIZE);
      const s0 = m[DriverMap.postSeq];
      let n = 0;
      let k = 0;
      for (let i = 0; i < span; i += MAP_PAGES) n += fillSlot(t, mapSlot((s0 + ++k) | 0), v0 + i, Math.min(MAP_PAGES, span - i));
      // Stored last, once for all k slots: pairs with Atomics.load(postSeq) in DeviceTlb.collectMap.
      Atomics.store(m, DriverMap.postSeq, (s0 + k) | 0);
      return n;
    } finally {
      t.lock.unlock();
    }
  } finally {
    void win.remove();
  }
}

/**
 * Fills the slot at word `slot` with VA pages [v0, +pages): entry i is our
 * own device-private page as hmmRangeFault reports it (dev_private_owner),
 * else none. Returns the entries set.
 */
function fillSlot(t: MapTarget, slot: number, v0: number, pages: number): number {
  const m = t.map;
  const own = t.devmem;
  storeU64(m, slot + MapSlot.start, v0 * PAGE_SIZE);
  m[slot + MapSlot.pages] = pages;
  let n = 0;
  for (let i = 0; i < pages; i++) {
    const w = slot + MapSlot.entries + i * ReplyEntry.kFieldCount;
    const pte = t.mm.pt.get(v0 + i);
    if (pte?.kind !== 'devprivate' || pte.devmem !== own) {
      m[w + ReplyEntry.flags] = 0;
      continue;
    }
    storeU64(m, w + ReplyEntry.devAddr, pte.page * PAGE_SIZE);
    m[w + ReplyEntry.flags] = HMM_PFN_VALID | HMM_PFN_DEVICE_PRIVATE | (pte.write ? HMM_PFN_WRITE : 0);
    m[w + ReplyEntry.gen] = Atomics.load(own.gen, pte.page);
    m[w + ReplyEntry.mem] = own.owner.index;
    m[w + ReplyEntry.page] = pte.page;
    n++;
  }
  return n;
}
