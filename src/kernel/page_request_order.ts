/**
 * Page requests before revokes: the order in which main serves the two
 * kinds of work a revoke storm puts on it.
 *
 * In the kernel a device's page request (an ATS/PRI fault) is served by a
 * kernel thread on some CPU while another CPU runs the exporter's
 * unmap_mapping_range(); here both run on the one main thread. Revokes
 * whose acks arrive synchronously (src/kernel/invalidate_broadcast.ts)
 * resolve with microtasks only, so a loop of them never lets the event
 * loop reach the page-request server (ImporterBinding.serve waits for
 * requests with Atomics.waitAsync): the devices' refaults would starve and
 * a stream under a revoke storm would stop. So a revoke first lets every
 * page request already posted be answered:
 *
 *   revoker (Mm.revokeRange)              page-request server
 *   ------------------------              -------------------
 *   while a request posted before the revoke
 *     (in any of a device's page request
 *     groups) is unanswered and YIELD_MAX_MS
 *     not spent:
 *       one event-loop turn  ------------> waitAsync resolves; serveOne;
 *                                          reply (request answered)
 *   invalidateRangeStart ...
 *   [Required: never waits for a lock: it only yields, so a revoke made
 *    while its caller holds a lock the server needs (an exporter
 *    recycling BAR slots inside a fault, under mmap_lock) costs at most
 *    YIELD_MAX_MS, never a deadlock]
 *
 * Threading: main thread only.
 */
import { PageRequest } from '../shm/tlb_layout.js';

/** Something that receives page requests from a device (an importer binding). */
export interface PageRequestSource {
  /** Is a page request posted and not answered yet? */
  requestPending(): boolean;
  /**
   * Sequence of the request posted last (a device may have several page
   * request groups outstanding: src/shm/tlb_layout.ts), so a drain waits
   * only for the requests posted before it began: a device that posts its
   * next request (a fault-ahead) as soon as one is answered would otherwise
   * keep every revoke waiting YIELD_MAX_MS.
   */
  postedSeq?(): number;
  /**
   * Is a request posted at or before `seq` (a postedSeq) still unanswered?
   * Without it, a source has one request outstanding: the one posted last.
   */
  pendingUpTo?(seq: number): boolean;
}

/** The longest a revoke waits for page requests to be answered before going on anyway. */
const YIELD_MAX_MS = 2;

export class PageRequestOrder {
  private readonly sources = new Set<PageRequestSource>();
  private draining: Promise<void> | null = null;

  /** yieldMaxMs: the bound of one drain (tests give a generous one to observe the answer, not the clock). */
  constructor(private readonly yieldMaxMs = YIELD_MAX_MS) {}

  add(s: PageRequestSource): void {
    this.sources.add(s);
  }

  delete(s: PageRequestSource): void {
    this.sources.delete(s);
  }

  /** True when any source has a request waiting for its answer. */
  pending(): boolean {
    for (const s of this.sources) if (s.requestPending()) return true;
    return false;
  }

  /**
   * Resolves once no page request waits (or after YIELD_MAX_MS of event-loop
   * turns); undefined when none waits now, so the common case costs no turn.
   */
  servePending(): Promise<void> | undefined {
    if (this.draining) return this.draining;
    if (!this.pending()) return undefined;
    // One drain shared by every revoke that arrives meanwhile, so they all
    // resume in the same microtask burst and their ranges go out in one
    // broadcast per device (DeviceInvalidator batching).
    const posted = new Map<PageRequestSource, number>();
    for (const s of this.sources) if (s.requestPending()) posted.set(s, s.postedSeq?.() ?? 0);
    this.draining = this.drain(posted, performance.now() + this.yieldMaxMs).finally(() => (this.draining = null));
    return this.draining;
  }

  /** Event-loop turns until the requests in `posted` (source -> seq when the drain began) are answered, or `until`. */
  private async drain(posted: Map<PageRequestSource, number>, until: number): Promise<void> {
    do await turn();
    while (this.waitingFor(posted) && performance.now() < until);
  }

  private waitingFor(posted: Map<PageRequestSource, number>): boolean {
    for (const [s, seq] of posted) {
      if (s.pendingUpTo ? s.pendingUpTo(seq) : s.requestPending() && (s.postedSeq?.() ?? 0) === seq) return true;
    }
    return false;
  }
}

/**
 * Which of a device's page request groups (src/shm/tlb_layout.ts) to
 * serve next, or -1: among those posted and not served yet (reqSeq !==
 * served[g]), the first posted of those the device waits for, else of its
 * prefetches (reqHint = 1). Upstream's iopf workqueue is unbound, so
 * groups are not answered in the order posted there either; any order is
 * correct (each group's reply is tested on its own), this one answers the
 * stalled device first.
 */
export function nextGroup(groups: readonly Int32Array[], served: Int32Array): number {
  let best = -1;
  let bestKey = 0;
  for (let g = 0; g < groups.length; g++) {
    // Pairs with Atomics.store(reqSeq) in DeviceTlb.post (stored after the request's fields).
    const seq = Atomics.load(groups[g], PageRequest.reqSeq);
    if (seq === served[g]) continue;
    // Sequence order within each kind; a hint sorts after every wait (they are fewer than 2^30 posts apart).
    const key = (seq + (Atomics.load(groups[g], PageRequest.reqHint) === 1 ? 1 << 30 : 0)) | 0;
    if (best < 0 || ((key - bestKey) | 0) < 0) {
      best = g;
      bestKey = key;
    }
  }
  return best;
}

function turn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
