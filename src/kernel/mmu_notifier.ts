/**
 * Interval notifiers: the protocol by which everything that caches a
 * translation of a process address range (a device TLB, an IOMMU mapping,
 * a snapshot) learns that the translation is going away.
 *
 * Mirrors Linux mm/mmu_notifier.c (interval-tree half):
 *   mmu_interval_notifier_insert()  -> MmuNotifierSubscriptions.insert
 *   mmu_interval_notifier_remove()  -> IntervalNotifier.remove
 *   mmu_interval_read_begin()       -> IntervalNotifier.readBegin
 *   mmu_interval_read_retry()       -> IntervalNotifier.readRetry
 *   mmu_interval_check_retry()      -> IntervalNotifier.checkRetry
 *   mmu_interval_set_seq()          -> IntervalNotifier.setSeq
 *   mn_itree_is_invalidating()      -> isInvalidating
 *   mn_itree_inv_start_range()      -> invStartRange
 *   mn_itree_inv_end()              -> invEnd
 *   __mmu_notifier_invalidate_range_start/end() (itree part)
 *                                   -> invalidateRangeStart / invalidateRangeEnd
 *   __mmu_notifier_release()        -> release
 *
 * The sequence `invalidateSeq` of one Mm (state table, as the kernel's):
 *   even          no invalidation of a range with subscribers is running
 *   odd           at least one is running ("fully excluded" write side)
 *   seq |= 1      an invalidation that hits a subscriber begins
 *   seq++         the last of the nested/overlapping invalidations ends
 *   seq & 1       true while a writer exists
 * Nested and overlapping invalidations share one odd value and end
 * together: only the invEnd that brings `activeInvalidateRanges` to zero
 * makes the seq even (once), applies deferred inserts/removes, and wakes
 * readBegin waiters.
 *
 * A subscriber's own `invalidateSeq` is set by its callback (setSeq, under
 * the driver lock) to the odd seq of the running invalidation:
 *
 *   invalidation (main)                     driver fault path
 *   -------------------                     -----------------
 *                                           seq = readBegin()    [even]
 *   invStartRange: mm seq |= 1 (odd S)
 *   ops.invalidate(): lock;                 hmmRangeFault() ... (stale?)
 *      setSeq(S); unlock
 *                                           lock
 *                                           readRetry(seq): S != seq
 *                                           [Required: readRetry() == true]
 *
 * readBegin while the subscriber's range is being invalidated (its seq
 * equals the odd mm seq) waits until the mm seq moves on; a subscriber not
 * touched by the running invalidation does not wait.
 *
 * Lifetime: one MmuNotifierSubscriptions per Mm, created with it, released
 * on exit (release event) after which inserts fail with ENODEV.
 * Threading: main thread only; "locks" are the JS run-to-completion rule
 * plus the explicit DriverLock (driver_lock.ts) of each driver. Callbacks run synchronously
 * inside invalidateRangeStart; work they must wait for (device acks) is
 * handed to range.defer() and awaited by invalidateRangeEnd.
 */
import { PeerVmaError, type Errno } from '../errors.js';
import { MMU_EVENTS, TraceEvent, traceSink } from '../shm/trace_ring.js';

/** Why a translation changes (enum mmu_notifier_event). */
export type MmuNotifyEvent = 'unmap' | 'clear' | 'protection' | 'migrate' | 'release' | 'exclusive';

/** Start time of each traced invalidation, for its trace slice (invalidateRangeStart -> invalidateRangeEnd). */
const traceStarts = new WeakMap<MmuNotifierRange, { t0: number; subs: number }>();

/** struct mmu_notifier_range. */
export interface MmuNotifierRange {
  readonly start: number;
  /** Exclusive. */
  readonly end: number;
  readonly event: MmuNotifyEvent;
  /** Who caused it (a DevMem for its own migrations, an exporter for revocation); null otherwise. */
  readonly owner: unknown;
  /** A non-blockable invalidation may not wait: a callback that cannot take its lock fails it with EAGAIN. */
  readonly blockable: boolean;
  /** Hands work the invalidation must wait for to invalidateRangeEnd (device acks). */
  defer(p: Promise<unknown>): void;
}

/** struct mmu_interval_notifier_ops. */
export interface IntervalNotifierOps {
  /**
   * Called with the odd seq of the running invalidation. Must call
   * sub.setSeq(curSeq) under the driver lock. Returns false only when the
   * range is not blockable and the lock could not be taken.
   */
  invalidate(sub: IntervalNotifier, range: MmuNotifierRange, curSeq: number): boolean;
  /** Called once on process exit after the final invalidation. */
  release?(sub: IntervalNotifier): void;
}

type SubState = 'deferred-insert' | 'live' | 'deferred-remove' | 'removed';

/** struct mmu_interval_notifier: one subscriber over [start, end). */
export class IntervalNotifier {
  /** Written by setSeq (callback, under driver lock) and insert; read by readBegin/readRetry. */
  invalidateSeq = 0;
  /** guarded by: subs (main thread). */
  state: SubState = 'live';

  constructor(
    readonly subs: MmuNotifierSubscriptions,
    readonly start: number,
    readonly end: number,
    readonly ops: IntervalNotifierOps,
    readonly name: string,
  ) {}

  overlaps(start: number, end: number): boolean {
    return this.start < end && start < this.end;
  }

  /**
   * mmu_interval_read_begin(): returns the seq to pass to readRetry. Waits
   * while an invalidation that covers this subscriber is running, so the
   * caller does not fault in pages that are about to go away.
   */
  async readBegin(): Promise<number> {
    const seq = this.invalidateSeq;
    // Pairs with setSeq() in the invalidate callback: when our seq equals the
    // odd mm seq, the running invalidation has called us and not yet ended.
    if (seq === this.subs.invalidateSeq && isInvalidating(this.subs)) {
      await this.subs.waitSeqChange(seq);
    }
    return seq;
  }

  /** mmu_interval_read_retry(): true when an invalidation hit us since readBegin. Call under the driver lock. */
  readRetry(seq: number): boolean {
    return this.invalidateSeq !== seq;
  }

  /** mmu_interval_check_retry(): same test, usable without the lock as an early exit. */
  checkRetry(seq: number): boolean {
    return this.invalidateSeq !== seq;
  }

  /** mmu_interval_set_seq(): only from the invalidate callback, under the driver lock. */
  setSeq(curSeq: number): void {
    if ((curSeq & 1) !== 1) throw new Error(`mmu_notifier: setSeq(${curSeq}) outside an invalidation (seq must be odd)`);
    this.invalidateSeq = curSeq;
  }

  /** mmu_interval_notifier_remove(): waits for a running invalidation that still sees us. */
  async remove(): Promise<void> {
    await this.subs.remove(this);
  }
}

/** struct mmu_notifier_subscriptions of one Mm. */
export class MmuNotifierSubscriptions {
  /** guarded by: main thread. Even when idle, odd while an invalidation with subscribers runs. */
  invalidateSeq = 2;
  /** guarded by: main thread. Invalidations between invStartRange and invEnd. */
  activeInvalidateRanges = 0;
  /** Live subscribers (the interval tree; a sorted list is enough at this scale). */
  private readonly itree: IntervalNotifier[] = [];
  /** Inserts/removes that arrived while invalidating; applied by the final invEnd. */
  private readonly deferred: IntervalNotifier[] = [];
  private waiters: (() => void)[] = [];
  private released = false;
  /** WARN_ON()s hit (a blockable invalidation refused by a callback). guarded by: main thread. */
  warnings = 0;

  constructor(
    readonly owner: string,
    /** Where WARN_ON() prints (the kernel log); the invalidation goes on either way. */
    private readonly warn: (message: string) => void = () => undefined,
  ) {}

  /** mmu_interval_notifier_insert(). */
  insert(start: number, length: number, ops: IntervalNotifierOps, name: string): IntervalNotifier {
    if (this.released) throw new PeerVmaError('ENODEV', this.owner, `cannot insert notifier '${name}': the process has exited`);
    // __mmu_interval_notifier_insert(): length 0 or a last byte past the address space is -EOVERFLOW.
    if (!(length > 0) || !Number.isSafeInteger(start + length)) throw new PeerVmaError('EOVERFLOW', this.owner, `notifier '${name}' over [${start}, +${length}) is empty or overflows`);
    const sub = new IntervalNotifier(this, start, start + length, ops, name);
    if (this.activeInvalidateRanges > 0) {
      if (isInvalidating(this)) {
        sub.state = 'deferred-insert';
        this.deferred.push(sub);
      } else {
        // An invalidation is running but touches no subscriber yet: take the
        // write side so the new subscriber's first readBegin waits for it.
        this.invalidateSeq |= 1;
        this.itree.push(sub);
      }
      sub.invalidateSeq = this.invalidateSeq;
    } else {
      if (isInvalidating(this)) throw new Error('mmu_notifier: odd seq with no active invalidation');
      // Odd, never equal to the current seq, so readBegin never waits and
      // readRetry of a seq taken before any invalidation stays false.
      sub.invalidateSeq = this.invalidateSeq - 1;
      this.itree.push(sub);
    }
    return sub;
  }

  async remove(sub: IntervalNotifier): Promise<void> {
    let seq = 0;
    if (sub.state === 'removed') return;
    if (isInvalidating(this)) {
      if (sub.state === 'deferred-insert') {
        // Never in the tree, so no callback can be running for it: nothing to wait for (upstream leaves seq 0).
        this.deferred.splice(this.deferred.indexOf(sub), 1);
        sub.state = 'removed';
      } else {
        seq = this.invalidateSeq;
        sub.state = 'deferred-remove';
        this.deferred.push(sub);
      }
    } else {
      this.itree.splice(this.itree.indexOf(sub), 1);
      sub.state = 'removed';
    }
    // The callback may still be running for this invalidation: wait it out.
    if (seq) await this.waitSeqChange(seq);
  }

  /** Subscribers, for inspection and tests. */
  get subscribers(): readonly IntervalNotifier[] {
    return this.itree;
  }

  /**
   * __mmu_notifier_invalidate_range_start() (mn_itree_invalidate): calls
   * every overlapping subscriber. Returns 0, or 'EAGAIN' when a
   * non-blockable range met a callback that could not take its lock — then
   * the invalidation is already ended and the caller must NOT call
   * invalidateRangeEnd.
   *
   * A blockable invalidation cannot fail: a callback that refuses one is a
   * driver bug, warned about (WARN_ON(mmu_notifier_range_blockable(range)))
   * and skipped, and the invalidation goes on. Throwing here instead would
   * leave the seq odd after invStartRange, with no invEnd to come, and every
   * later readBegin of this mm would wait forever.
   */
  invalidateRangeStart(range: MmuNotifierRange): 0 | Errno {
    const { subs, seq } = invStartRange(this, range);
    if (traceSink.w) traceStarts.set(range, { t0: traceSink.w.now(), subs: subs.length });
    for (const sub of subs) {
      if (sub.ops.invalidate(sub, range, seq)) continue;
      if (range.blockable) {
        this.warnings++;
        this.warn(`mmu_notifier: WARNING: notifier '${sub.name}' of ${this.owner} refused a blockable ${range.event} invalidation of [0x${range.start.toString(16)}, 0x${range.end.toString(16)}); going on (a blockable invalidation cannot fail)`);
        continue;
      }
      invEnd(this);
      return 'EAGAIN';
    }
    return 0;
  }

  /** __mmu_notifier_invalidate_range_end(): waits for what the callbacks deferred (device acks), then invEnd. */
  async invalidateRangeEnd(range: MmuNotifierRange, deferred: readonly Promise<unknown>[]): Promise<void> {
    try {
      // One deferred ack (the common case) is awaited alone: no Promise.all and its extra hops.
      if (deferred.length === 1) await deferred[0];
      else if (deferred.length > 1) await Promise.all(deferred);
    } finally {
      invEnd(this);
      const tw = traceSink.w;
      const st = traceStarts.get(range);
      if (tw && st) tw.emit(TraceEvent.MmInvalidation, st.t0, tw.now() - st.t0, range.start, range.end, MMU_EVENTS.indexOf(range.event), st.subs);
    }
  }

  /** __mmu_notifier_release(): process exit. Callers ran the final invalidation first. */
  release(): void {
    this.released = true;
    for (const sub of this.itree.splice(0)) {
      sub.state = 'removed';
      sub.ops.release?.(sub);
    }
  }

  /** Resolves once invalidateSeq != seq. Pairs with the wake in invEnd. */
  waitSeqChange(seq: number): Promise<void> {
    if (this.invalidateSeq !== seq) return Promise.resolve();
    return new Promise((resolve) => {
      const check = (): void => {
        if (this.invalidateSeq !== seq) resolve();
        else this.waiters.push(check);
      };
      this.waiters.push(check);
    });
  }

  /** @internal for invEnd */
  finishInvalidation(): void {
    for (const sub of this.deferred.splice(0)) {
      if (sub.state === 'deferred-insert') {
        sub.state = 'live';
        this.itree.push(sub);
      } else if (sub.state === 'deferred-remove') {
        this.itree.splice(this.itree.indexOf(sub), 1);
        sub.state = 'removed';
      }
    }
    const w = this.waiters;
    this.waiters = [];
    for (const cb of w) cb();
  }

  /** @internal for invStartRange */
  overlapping(start: number, end: number): IntervalNotifier[] {
    return this.itree.filter((s) => s.overlaps(start, end));
  }
}

/** mn_itree_is_invalidating(). */
export function isInvalidating(subs: MmuNotifierSubscriptions): boolean {
  return (subs.invalidateSeq & 1) === 1;
}

/** mn_itree_inv_start_range(): counts the invalidation; goes odd when it hits a subscriber. */
function invStartRange(subs: MmuNotifierSubscriptions, range: MmuNotifierRange): { subs: IntervalNotifier[]; seq: number } {
  subs.activeInvalidateRanges++;
  const hit = subs.overlapping(range.start, range.end);
  if (hit.length > 0) subs.invalidateSeq |= 1;
  return { subs: hit, seq: subs.invalidateSeq };
}

/** mn_itree_inv_end(): the last active invalidation makes the seq even, once. */
function invEnd(subs: MmuNotifierSubscriptions): void {
  if (subs.activeInvalidateRanges <= 0) throw new Error('mmu_notifier: invalidate_range_end without start');
  if (--subs.activeInvalidateRanges > 0 || !isInvalidating(subs)) return;
  subs.invalidateSeq++;
  if (isInvalidating(subs)) throw new Error('mmu_notifier: seq still odd after the final inv_end');
  subs.finishInvalidation();
}

/**
 * A range object with its own defer list; `run` is the whole start ->
 * mutate -> end sequence every Mm operation uses.
 */
export function makeRange(start: number, end: number, event: MmuNotifyEvent, owner: unknown, blockable = true): MmuNotifierRange & { readonly deferred: Promise<unknown>[] } {
  const deferred: Promise<unknown>[] = [];
  return { start, end, event, owner, blockable, deferred, defer: (p) => void deferred.push(p) };
}
