/**
 * The driver-installed translation mailbox: translations the kernel's
 * driver posts into a device TLB without a page request, as
 * lib/test_hmm.c's dmirror_migrate_finalize_and_map() stores the pages it
 * just migrated into the dmirror's own page table (dmirror->pt) under the
 * driver mutex, so the device's first access after the migration does not
 * fault.
 *
 *   main (src/drivers/migrate_map.ts)          worker (DeviceTlb.collectMap)
 *   ---------------------------------          -----------------------------
 *   only when doneSeq == postSeq (consumed)
 *   driver lock; readRetry(seq)? -> no post
 *   write start, pages, entries
 *   Atomics.store(postSeq, s)  (last)  ---->   Atomics.load(postSeq) != doneSeq:
 *   unlock                                     install entries (flags != 0)
 *                                              Atomics.store(doneSeq, postSeq)
 *
 * [Required: the worker installs a posted mailbox before it serves any
 *  invalidation (DeviceTlb.drop collects first): an invalidation posted
 *  after postSeq then drops what was installed, and one that raced the
 *  post made the driver not post at all (readRetry under the driver lock,
 *  which the invalidate callback takes too).]
 */
import { defineLayout } from './layout.js';
import { FAULT_WINDOW, ReplyEntry } from './tlb_layout.js';

/** Pages one post can carry (a migration's first MAP_PAGES pages; the rest fault as usual). */
export const MAP_PAGES = 4 * FAULT_WINDOW;

export const DriverMap = defineLayout({
  postSeq: { writer: 'main', doc: 'sequence of the post written last; stored last' },
  doneSeq: { writer: 'worker', doc: 'postSeq the worker installed last (the mailbox is free again when equal)' },
  start: { words: 2, writer: 'main', doc: 'virtual address of entry 0 (u64, page aligned)' },
  pages: { writer: 'main', doc: 'entries posted, 1..MAP_PAGES (one per VA page from start; flags 0: none for that page)' },
  entries: { words: MAP_PAGES * ReplyEntry.kFieldCount, writer: 'main', doc: 'ReplyEntry records' },
});
