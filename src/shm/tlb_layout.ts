/**
 * Importer-side SAB layouts: the page-request mailbox a device uses to ask
 * the kernel for translations (ATS/PRI in spirit; in lib/test_hmm.c the
 * driver calls dmirror_fault() itself), and the safety-violation log the
 * checker writes (DESIGN.md section 6).
 *
 * Page request protocol (per page request group; a device has up to
 * PRI_GROUPS of them outstanding, each in its own group of the mailbox,
 * PriMailbox; the rest of the protocol is per group):
 *
 *   device worker (DeviceTlb.fault)         main (MirrorDriver fault server)
 *   -------------------------------         --------------------------------
 *   pick a free group g; write start,
 *     npages, write flag, sparse flag +
 *     page mask
 *   Atomics.store(g.reqSeq, s)              waitAsync(bell != seen); serve the
 *   Atomics.store(bell, s)                    posted groups (waited-for first,
 *                                             then prefetches; each in seq order):
 *   Atomics.notify(bell)                    seq = readBegin(); hmmRangeFault()
 *   loop: seen = load(ctl.wake)             lock; if readRetry(seq): EBUSY
 *         inv.check()  <- serves            write entries, errno, npages
 *            invalidations while waiting    Atomics.store(replySeq, s)
 *         if load(g.replySeq) == s: break   ringWake(device ctl); unlock
 *         Atomics.wait(ctl.wake, seen)
 *   inv.check(); if an invalidation overlapping the request was served
 *   since the request was posted: retry   (the worker-side readRetry)
 *   else install entries in the device TLB
 *   [Required: no entry is installed from a reply computed before an
 *    invalidation of its range that the device has acked; a sparse
 *    request's test is per asked page: an entry of a page invalidated
 *    since the post is not installed, the others are]
 *
 * A sparse request is a page request group (PCIe PRI): one window of up
 * to SPARSE_SPAN pages, one response, but only the pages whose mask bit is
 * set (at most FAULT_WINDOW of them) are faulted, mapped and installed
 * (the holes an invalidation punched among pages the device still holds);
 * the reply carries their entries only, in order (entry k = the k-th page
 * asked), so holes spread over several windows fit in one mailbox.
 *
 * Several groups outstanding (PCIe PRI: each Page Request Group has its
 * own index, and pci_enable_pri(pdev, reqs) grants a device `reqs`
 * outstanding requests; intel-iommu grants 32): a device that prefetched
 * the next window (DeviceTlb.prefetch) can post the fault it stalls on in
 * another group at once, instead of waiting for the prefetch's reply
 * first, and the kernel answers both in one pass (page requests are served
 * before revokes: src/kernel/page_request_order.ts), the one the device
 * waits for first (reqHint; upstream's iopf queue is an unbound workqueue:
 * groups are not answered in the order posted either). Each group's reply is
 * tested against the invalidations since its own post: groups answered
 * out of order, or installed after a newer one, install nothing stale.
 *
 * The worker serves invalidations while it waits, so a fault that needs an
 * invalidation of the faulting device itself (a migration) cannot deadlock.
 */
import { defineLayout } from './layout.js';

/**
 * Pages one request may ask for: the mailbox's capacity. A streaming
 * importer asks for up to this many pages ahead (ATS-style range request);
 * the mirror asks for 64 at a time, as lib/test_hmm.c does.
 */
export const FAULT_WINDOW = 512;

/** Widest window of a sparse request: its asked pages (at most FAULT_WINDOW) may lie this far apart. */
export const SPARSE_SPAN = 4 * FAULT_WINDOW;

/** Int32 words of a request's page mask (one bit per page of a sparse window). */
export const REQ_MASK_WORDS = SPARSE_SPAN / 32;

/** One translation in a reply. */
export const ReplyEntry = defineLayout({
  devAddr: { words: 2, writer: 'main', doc: 'address the device puts on the bus (bus address, or IOVA with IOMMU on)' },
  flags: { writer: 'main', doc: 'HMM_PFN_* result flags' },
  gen: { writer: 'main', doc: 'page generation of the target when the translation was made' },
  mem: { writer: 'main', doc: 'target memory: -1 system RAM, else device index' },
  page: { writer: 'main', doc: 'target page index inside that memory' },
});

/** One page request group of the mailbox (PriMailbox): a request and its reply. */
export const PageRequest = defineLayout({
  reqSeq: { writer: 'worker', doc: "sequence of the request posted last in this group (one sequence across the device's groups); stored after the request's fields, before the bell" },
  reqStart: { words: 2, writer: 'worker', doc: 'first virtual address (u64, page aligned)' },
  reqPages: { writer: 'worker', doc: 'pages of the window, 1..FAULT_WINDOW (1..SPARSE_SPAN with reqSparse)' },
  reqWrite: { writer: 'worker', doc: '1 = REQ_WRITE on every page asked' },
  reqHint: { writer: 'worker', doc: "1 = a prefetch nobody waits for yet (served after the groups the device is stalled on), 0 = the device waits for it; cleared when a fault starts waiting for it. A scheduling hint only: either order is correct" },
  reqSparse: { writer: 'worker', doc: '1 = a page request group: only the pages whose reqMask bit is set are asked (the others are held already), 0 = every page' },
  reqMask: { words: REQ_MASK_WORDS, writer: 'worker', doc: 'with reqSparse, bit i (word i >> 5, bit i & 31) = page i of the window is asked (at most FAULT_WINDOW bits set)' },
  replySeq: { writer: 'main', doc: 'reqSeq this reply answers; stored last' },
  replyErrno: { writer: 'main', doc: '0 or an ErrnoCode' },
  replyPages: { writer: 'main', doc: 'pages of the window answered (entries: one per page, or with reqSparse one per asked page, in order)' },
  entries: { words: FAULT_WINDOW * ReplyEntry.kFieldCount, writer: 'main', doc: 'ReplyEntry records' },
});

/** Page request groups a device may have outstanding (PRI's Outstanding Page Request Allocation, in groups). */
export const PRI_GROUPS = 4;

/**
 * A device's page-request mailbox: PRI_GROUPS groups and the doorbell (the
 * device notifies it after each post; the kernel waits on it).
 */
export const PriMailbox = defineLayout({
  groups: { words: PRI_GROUPS * PageRequest.kFieldCount, writer: 'both', doc: 'PRI_GROUPS PageRequest records (the worker writes the requests, main the replies)' },
  bell: { writer: 'worker', doc: 'sequence of the request posted last in any group; stored after its group\'s reqSeq, then notified (main waits on it with waitAsync)' },
});

/** Group `g` of a mailbox: a view whose PageRequest offsets address that group. */
export function priGroup(mailbox: Int32Array, g: number): Int32Array {
  const at = PriMailbox.groups + g * PageRequest.kFieldCount;
  return mailbox.subarray(at, at + PageRequest.kFieldCount);
}

/** Does a sparse request in `req` (a group view) ask for page `i` of its window (reqMask bit i)? */
export function pageAsked(req: Int32Array, i: number): boolean {
  return (req[PageRequest.reqMask + (i >> 5)] & (1 << (i & 31))) !== 0;
}


/** Replies carry errnos as Linux numbers (replyErrno): the list is src/shm/errno.ts. */
export { errnoCode, errnoName, type Errno as ErrnoName } from './errno.js';

/** Violation kinds the safety checker reports. */
export const enum ViolationKind {
  /** The page the entry points at was freed/reused since the entry was made (generation differs). */
  StaleGeneration = 1,
  /** The device address now decodes to a different page (BAR slot recycled, IOVA remapped). */
  Remapped = 2,
}

export const VIOLATION_RECORDS = 16;

export const ViolationRecord = defineLayout({
  kind: { writer: 'worker', doc: 'ViolationKind' },
  va: { words: 2, writer: 'worker', doc: 'virtual address the device used (u64)' },
  devAddr: { words: 2, writer: 'worker', doc: 'device address of the entry (u64)' },
  entryGen: { writer: 'worker', doc: 'generation recorded in the device TLB entry' },
  liveGen: { writer: 'worker', doc: 'generation found in the live table' },
  write: { writer: 'worker', doc: '1 = the access was a write' },
});

export const SafetyLog = defineLayout({
  count: { writer: 'worker', doc: 'violations recorded (records wrap after VIOLATION_RECORDS)' },
  records: { words: VIOLATION_RECORDS * ViolationRecord.kFieldCount, writer: 'worker', doc: 'ViolationRecord records' },
});

