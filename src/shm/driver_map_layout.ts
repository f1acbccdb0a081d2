/**
 * The driver-installed translation mailbox: translations the kernel's
 * driver posts into a device TLB without a page request, as
 * lib/test_hmm.c's dmirror_migrate_finalize_and_map() stores the pages it
 * just migrated into the dmirror's own page table (dmirror->pt) under the
 * driver mutex, so the device's first access after the migration does not
 * fault.
 *
 * A ring of MAP_SLOTS slots. dmirror_migrate_to_device() migrates and
 * maps a range in 64-page chunks inside one ioctl, with no device working
 * meanwhile; overlapping the two is our own design (hmm-peer's first pass,
 * src/workloads/hmm_peer/pipeline.ts): a driver that hands the device
 * work on a chunk while it migrates the next posts again before the device
 * has looked at its table. With one slot that second post was dropped and
 * the device page-faulted the whole chunk.
 *
 *   main (src/drivers/migrate_map.ts)          worker (DeviceTlb.collectMap)
 *   ---------------------------------          -----------------------------
 *   only while postSeq - doneSeq < MAP_SLOTS
 *   driver lock; readRetry(seq)? -> no post
 *   fill slots postSeq+1 .. postSeq+k          (slot of seq s: mapSlot(s))
 *   Atomics.store(postSeq, postSeq + k) (last) -> Atomics.load(postSeq) != doneSeq:
 *   unlock                                     install slots doneSeq+1 .. postSeq
 *                                              in order (flags != 0)
 *                                              Atomics.store(doneSeq, postSeq)
 *
 * [Required: the worker installs every posted slot before it serves any
 *  invalidation (DeviceTlb.drop collects first): an invalidation posted
 *  after postSeq then drops what was installed, and one that raced the
 *  post made the driver not post at all (readRetry under the driver lock,
 *  which the invalidate callback takes too). A slot is rewritten only
 *  after the worker stored a doneSeq past it.]
 */
import { PAGE_SIZE } from './constants.js';
import { defineLayout, loadU64 } from './layout.js';
import { FAULT_WINDOW, ReplyEntry } from './tlb_layout.js';

/** Pages one slot carries (a post of more spans several slots; past the free slots the pages fault as usual). */
export const MAP_PAGES = 2 * FAULT_WINDOW;

/** Slots of the ring (a power of two: mapSlot masks the wrapping sequence). */
export const MAP_SLOTS = 4;

/** One slot of the ring: up to MAP_PAGES pages of a post (a post of more fills several slots in a row). */
export const MapSlot = defineLayout({
  start: { words: 2, writer: 'main', doc: 'virtual address of entry 0 (u64, page aligned)' },
  pages: { writer: 'main', doc: 'entries posted, 1..MAP_PAGES (one per VA page from start; flags 0: none for that page)' },
  entries: { words: MAP_PAGES * ReplyEntry.kFieldCount, writer: 'main', doc: 'ReplyEntry records' },
});

export const DriverMap = defineLayout({
  postSeq: { writer: 'main', doc: 'sequence of the slot written last; stored last' },
  doneSeq: { writer: 'worker', doc: 'postSeq the worker installed last (slots doneSeq+1 .. postSeq are posted, the others free)' },
  slots: { words: MAP_SLOTS * MapSlot.kFieldCount, writer: 'main', doc: 'MAP_SLOTS MapSlot records, the one of sequence s at mapSlot(s)' },
});

/** Word offset of the slot that sequence `seq` (a wrapping int32) fills. */
export function mapSlot(seq: number): number {
  return DriverMap.slots + (seq & (MAP_SLOTS - 1)) * MapSlot.kFieldCount;
}

/**
 * Slots the driver may fill now, in [0, MAP_SLOTS]. Single writer per
 * word: postSeq is written only by postMigrated under the driver lock,
 * doneSeq only by the worker; so, read under the driver lock, postSeq is
 * stable and doneSeq only grows meanwhile (a lower bound). doneSeq is
 * written by the device and not trusted: a value past postSeq or more than
 * MAP_SLOTS behind it (a rogue or broken device) is clamped, so the driver
 * never indexes past the ring; what such a device then installs only
 * hurts itself (every entry carries its page generation for the checker).
 */
export function freeMapSlots(m: Int32Array): number {
  const pending = (Atomics.load(m, DriverMap.postSeq) - Atomics.load(m, DriverMap.doneSeq)) | 0;
  return Math.min(MAP_SLOTS, Math.max(0, MAP_SLOTS - pending));
}

/**
 * Where takeMapPosts installs each posted entry: VA page `vpn` -> the
 * ReplyEntry fields. An object with a method, not a callback: the worker's
 * DeviceTlb passes itself, so every run's TLB calls the one prototype
 * method, whose optimized code a pooled device thread keeps (a closure per
 * TLB was a new function each run, compiled again inside each window).
 */
export interface MapSink {
  installPosted(vpn: number, devAddr: number, flags: number, gen: number, mem: number, page: number): void;
}

/**
 * The worker's side: installs every slot posted since the last call, in
 * order (entries with flags 0 are skipped), then frees them. Returns the
 * entries installed.
 */
export function takeMapPosts(m: Int32Array, sink: MapSink): number {
  // Pairs with Atomics.store(postSeq) in postMigrated (src/drivers/migrate_map.ts).
  const s = Atomics.load(m, DriverMap.postSeq);
  let d = m[DriverMap.doneSeq];
  if (s === d) return 0;
  let n = 0;
  while (d !== s) {
    d = (d + 1) | 0;
    const slot = mapSlot(d);
    const v0 = Math.floor(loadU64(m, slot + MapSlot.start) / PAGE_SIZE);
    const pages = m[slot + MapSlot.pages];
    for (let i = 0; i < pages; i++) {
      const w = slot + MapSlot.entries + i * ReplyEntry.kFieldCount;
      const f = m[w + ReplyEntry.flags];
      if (f === 0) continue;
      sink.installPosted(v0 + i, loadU64(m, w + ReplyEntry.devAddr), f, m[w + ReplyEntry.gen], m[w + ReplyEntry.mem], m[w + ReplyEntry.page]);
      n++;
    }
  }
  // The slots are free again: the driver may post the next migration's entries.
  Atomics.store(m, DriverMap.doneSeq, s);
  return n;
}
