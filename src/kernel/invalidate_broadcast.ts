/**
 * Invalidation across threads: the kernel's half of the device
 * invalidation slot (src/shm/device_ctl.ts), one DeviceInvalidator per
 * device worker.
 *
 *   main (DeviceInvalidator.roundTrip)      device worker (InvalidationPort.check)
 *   ----------------------------------      --------------------------------------
 *   write ranges[0..n), invCount            seq = Atomics.load(invSeq)
 *   Atomics.store(invSeq, seq)              read ranges; re-load invSeq, redo
 *   ringWake(ctl)                             if it moved (a newer batch was
 *                                             posted meanwhile; safe because a
 *                                             batch re-sends unacked ranges)
 *   (one microtask: other devices post)     finish the DMA piece in flight,
 *   waitSync: poll invAck while the device  drop TLB / IOTLB entries in ranges
 *     moves; then store(invSleeper, seq),   Atomics.store(invAck, seq); notify
 *     Atomics.wait (ACK_SYNC_MS at most),   at a DMA checkpoint: invSleeper ==
 *     store(invSleeper, 0); notify            seq? spin, then wait on it <= 1 ms
 *   else waitAsync(invAck, cur, deadline)
 *     until invAck == seq
 *   [Required: when invalidate() resolves, the device no longer uses any
 *    translation of the ranges made before the call]
 *
 * Main blocks, as the kernel's invalidate_range_start callers sleep in
 * the driver's callback until the hardware is done (mm/mmu_notifier.c:
 * mn_itree_invalidate calls ops->invalidate, which may sleep when the
 * range is blockable). Only for a bounded budget, though: a device that
 * is itself waiting for main (a page-request reply) acks while it waits
 * (DeviceTlb.fault), and one that cannot answer now (stuck in compute)
 * sends main back to its event loop after the budget, so no wait here can
 * deadlock. Acks that keep arriving synchronously still give the event
 * loop a turn every EVENT_LOOP_TURN_MS (eventLoopTurnIfDue).
 *
 * Batching (DESIGN.md section 4): one batch is in flight per device; calls
 * made meanwhile are merged into the next batch, posted INV_BATCH ranges at
 * a time (beyond MAX_POSTS slots' worth, ranges are merged into covering
 * ranges — over-invalidation is safe, never under-invalidation).
 *
 * Parked devices (run tokens, src/devices/run_tokens.ts): a device queued
 * for a token and not admitted is asleep before its next DMA chunk, and
 * serves every posted batch once admitted, before that chunk
 * (workers/runtime/run_token.ts acquire). The kernel neither wakes nor
 * waits for it, as x86 sends no TLB-shootdown IPI to a CPU in lazy TLB
 * mode (arch/x86/mm/tlb.c: it checks the flush generation before it uses
 * its page tables again); the batch counts as acked (stats.parkedAcks)
 * and its ranges go out again with every later batch until the device
 * acked it. Main may then rewrite the slot while the device reads it, so
 * the slot is a seqlock (invWriting, odd while main writes).
 *
 * A device that does not ack within the deadline is counted
 * (stats.timedOut) and reported by name to `onTimeout`: with the IOMMU on
 * the kernel fences the device off its domain (contained); with it off the
 * device may still reach the pages the caller now frees, and the kernel
 * records a safety violation (src/kernel/kernel.ts ackTimedOut). Its
 * unacked ranges are re-sent with every later batch until an ack covers
 * them.
 */
import { DeviceError } from '../errors.js';
import { DeviceCtl, INV_BATCH, INV_RANGE_WORDS, InvRange, ringWake } from '../shm/device_ctl.js';
import { storeU64 } from '../shm/layout.js';
import { traceDev, TraceEvent, traceSink } from '../shm/trace_ring.js';

export interface InvRange {
  readonly start: number;
  readonly end: number;
}

/** Called with a post's seq and ranges before the device can see it (DeviceInvalidator.invalidate). */
export type BeforePost = (seq: number, batch: readonly InvRange[]) => void;

export class DeviceInvalidator {
  /** guarded by: main thread. Last seq posted. */
  private seq: number;
  private tail: Promise<void> = Promise.resolve();
  private pending: InvRange[] = [];
  /** beforePost callbacks of the pending calls (invalidate). */
  private pendingHooks: BeforePost[] = [];
  private nextBatch: Promise<void> | null = null;
  /** Ranges of batches that timed out, re-sent until acked. */
  private unacked: InvRange[] = [];

  /** Ranges a timed-out post left unacked, still to be re-sent with the next batch. */
  get hasUnacked(): boolean {
    return this.unacked.length > 0;
  }
  /** Ranges posted to the device while it was parked (not waited for), re-sent with every batch until it acks `parkedSeq`. */
  private parkedRanges: InvRange[] = [];
  private parkedSeq = 0;
  /** invPolls and the time when main last saw an ack (ackSeen). */
  private lastAckPolls = 0;
  private lastAckAt = 0;
  /** Whether the device was parked right after the last post (post() sets it). */
  private postedParked = false;
  /** Round trips completed (statistics). */
  roundTrips = 0;
  /**
   * Statistics: batches posted, batches acked in time, batches that timed
   * out (the safety verdict reads these, not the log), ranges posted, acks
   * seen while main blocked (waitSync), of those the ones seen while it
   * still polled, batches not waited for because the device was parked
   * (counted as acked), ack latency of each batch waited for (µs).
   */
  readonly stats = { sent: 0, acked: 0, timedOut: 0, ranges: 0, syncAcks: 0, polledAcks: 0, parkedAcks: 0, ackUs: [] as number[] };
  /** How long the next round trip may block main (waitSync). */
  private syncBudgetMs = ACK_SYNC_MS;
  /** The device failed: its waits go straight to waitAsync, which reports the failure. */
  private failed = false;

  constructor(
    readonly name: string,
    private readonly ctl: Int32Array,
    private readonly timeoutMs: number,
    private readonly onTimeout: (device: string, seq: number, ms: number, ranges: readonly InvRange[]) => void,
    /** Subscribes to the device's failure (returns the unsubscription): a dead device never acks, so its waits end at once. */
    private readonly onFailure: (cb: (e: Error) => void) => () => void = () => () => undefined,
    /** Is the device parked, waiting for a run token before its next DMA chunk (RunTokens.parked)? */
    private readonly parked: () => boolean = () => false,
  ) {
    this.seq = Atomics.load(ctl, DeviceCtl.invSeq);
    this.onFailure((e) => this.deviceFailed(e)); // for life: a dead device is not worth blocking for
  }

  /**
   * The device failed: its waits end at once from now on. When its worker
   * thread is gone (crashed, exited), it can touch no memory again, so the
   * ranges a timed-out post left unacked are dropped: re-sending them only
   * kept every later invalidation going to a dead device (hasUnacked turns
   * the importer's holders-only skip off). A device that failed by timing
   * out, or reporting an error, may still run: its ranges keep riding along
   * (also if it crashes afterwards: a handle reports its first failure only,
   * and the machine is torn down at the first).
   */
  private deviceFailed(e: Error): void {
    this.failed = true;
    if (e instanceof DeviceError && (e.what === 'crashed' || e.what === 'exited')) {
      this.unacked = [];
      this.parkedRanges = [];
    }
  }

  /**
   * Posts the ranges and resolves once the device acked them (or timed out
   * and was reported). `beforePost`, if given, is called with the seq and
   * ranges of every post of the batch these ranges go out in, just before
   * the device can see that post (the IOMMU marks the IOVAs the post
   * flushes: IommuDomain.drain).
   */
  invalidate(ranges: readonly InvRange[], beforePost?: BeforePost): Promise<void> {
    for (const r of ranges) this.pending.push(r);
    if (beforePost) this.pendingHooks.push(beforePost);
    if (!this.nextBatch) this.nextBatch = this.tail = this.roundTrip(this.tail);
    return this.nextBatch;
  }

  /**
   * One batch: after the batch in flight (`prev`), takes every range
   * pending then (the calls made meanwhile, and the synchronous burst this
   * one was started in, join it) and posts them (with any a timed-out batch
   * left) in slot-sized batches, one after another, each acked before the
   * next: more ranges than one slot holds go out as more posts rather than
   * being folded into covering ranges, whose refaults would cost far more
   * than a synchronous round trip; past MAX_POSTS slots' worth they are
   * folded (safe). One async function, not a then() chain: every promise
   * hop is a few µs of main's time when its code runs cold between sparse
   * invalidations.
   */
  private async roundTrip(prev: Promise<void>): Promise<void> {
    await prev;
    const ranges = this.pending.splice(0);
    const hooks = this.pendingHooks.splice(0);
    this.nextBatch = null;
    // Ranges posted while the device was parked go out again with every
    // batch (folded into it) until the device acked that post: each post
    // overwrites the slot, and a parked device reads only the last one.
    if (this.parkedRanges.length > 0 && ((Atomics.load(this.ctl, DeviceCtl.invAck) - this.parkedSeq) | 0) >= 0) this.parkedRanges = [];
    const all = this.unacked.length === 0 && ranges.length === 1 ? ranges : coalesce([...this.unacked, ...ranges], INV_BATCH * MAX_POSTS);
    const posts = postsOf(all, hooks);
    for (let k = 0; k < posts.length; k++) {
      const slice = posts[k].ranges;
      const batch = this.parkedRanges.length === 0 ? slice : coalesce([...this.parkedRanges, ...slice], INV_BATCH);
      const seq = this.post(batch, posts[k].hooks);
      const posted = performance.now();
      if (this.postedParked) {
        // Not waited for: the device serves it once admitted, before its next chunk.
        this.parkedRanges = batch;
        this.parkedSeq = seq;
        this.stats.parkedAcks++;
        this.acked(seq, posted, batch, false);
        continue;
      }
      // One microtask turn before blocking: the other devices this same
      // invalidation reaches post their batches first (their roundTrips were
      // queued in the same invalidateRangeStart), so they ack in parallel.
      if (k === 0) await null;
      let acked = !this.failed && this.waitSync(seq, posted);
      if (!acked) acked = await this.waitAsync(seq, posted, posts.slice(k).flatMap((p) => p.ranges));
      if (!acked) return;
      this.acked(seq, posted, batch);
      this.parkedRanges = []; // that ack covers every range re-sent with it
    }
    this.unacked = [];
    const turn = eventLoopTurnIfDue();
    if (turn) await turn;
  }

  /** Statistics and trace of one acked post; ackUs holds the acks main waited for (a parked device's is not). */
  private acked(seq: number, posted: number, batch: readonly InvRange[], waited = true): void {
    this.roundTrips++;
    this.stats.acked++;
    if (waited) this.stats.ackUs.push((performance.now() - posted) * 1000);
    const tw = traceSink.w;
    if (tw) {
      const dev = traceDev(this.name);
      tw.emit(TraceEvent.Invalidation, performance.timeOrigin + posted, performance.now() - posted, dev, seq, batch.length, batch[0]?.start ?? 0, batch[batch.length - 1]?.end ?? 0);
      tw.instant(TraceEvent.InvalidationAcked, dev, seq, (performance.now() - posted) * 1000);
    }
  }

  /**
   * Writes the batch into the device's invalidation slot (seqlock
   * invWriting: the device may be reading the slot, when the last batch
   * was not waited for) and wakes the device unless it is parked (it will
   * serve the batch when admitted; postedParked says which). Returns its seq.
   */
  private post(batch: readonly InvRange[], hooks: readonly BeforePost[]): number {
    const ctl = this.ctl;
    // Never 0 when it wraps: 0 is invSleeper's "main sleeps on no ack".
    const seq = ((this.seq + 1) | 0) || 1;
    for (const h of hooks) h(seq, batch);
    // Pairs with the invWriting loads around the slot reads in InvalidationPort.check.
    Atomics.add(ctl, DeviceCtl.invWriting, 1);
    for (let i = 0; i < batch.length; i++) {
      const w = DeviceCtl.invRanges + i * INV_RANGE_WORDS;
      storeU64(ctl, w + InvRange.start, batch[i].start);
      storeU64(ctl, w + InvRange.end, batch[i].end);
    }
    Atomics.store(ctl, DeviceCtl.invCount, batch.length);
    Atomics.add(ctl, DeviceCtl.invWriting, 1);
    this.seq = seq;
    // Pairs with Atomics.load(invSeq) in InvalidationPort.check.
    Atomics.store(ctl, DeviceCtl.invSeq, seq);
    // After the store of invSeq (RunTokens.parked). A device told to lag or
    // delay its acks (fault injection) is always woken and waited for.
    this.postedParked = !this.failed && Atomics.load(ctl, DeviceCtl.invLagMs) === 0 && Atomics.load(ctl, DeviceCtl.invDelayMs) === 0 && this.parked();
    if (!this.postedParked) ringWake(ctl);
    this.stats.sent++;
    this.stats.ranges += batch.length;
    return seq;
  }

  /**
   * The caller sleeps until the device acks, as invalidate_range_start's
   * callers do in the kernel (the driver waits for its hardware inside the
   * notifier callback): Atomics.wait on the ack word, for at most the sync
   * budget. True when acked. The budget is bounded, so a device that cannot
   * ack now (stuck in compute, or waiting for something from this very
   * thread) costs main at most the budget, never a deadlock; a device that
   * missed it gets a short budget until it answers in time again.
   *
   * Before sleeping, main polls the ack word, as the kernel polls for an
   * IOTLB invalidation's completion (intel-iommu's qi_submit_sync spins
   * on the wait descriptor's status): a streaming device sees the post
   * within one DMA piece (DMA_POLL_BYTES), sooner than a sleeping main is
   * woken (on an idle VM the futex wake of main's vCPU alone costs about
   * half of atomics.rtt). It polls only while the device is seen running,
   * as mutex_spin_on_owner spins only while the owner is on a CPU: while
   * the device's invPolls word moves (it looks for invalidations between
   * DMA pieces), for POLL_MAX_US at most. A device that sleeps, computes,
   * or is preempted on busy cores stops it moving; main then sleeps
   * within POLL_STALL_US, rather than hold a core the device may need to
   * ack (measured on 2 loaded cores: ack p50 +20 µs with a blind 20 µs spin).
   */
  private waitSync(seq: number, posted: number): boolean {
    const ctl = this.ctl;
    if (this.pollAck(seq, posted)) {
      this.stats.polledAcks++;
      this.stats.syncAcks++;
      this.ackSeen();
      return true;
    }
    const until = posted + Math.min(this.syncBudgetMs, this.timeoutMs);
    // The device that acks this seq yields its core until main is awake
    // (InvalidationPort.yieldToSleeper); stored before the ack word is
    // loaded below, as the device stores invAck before loading this.
    Atomics.store(ctl, DeviceCtl.invSleeper, seq);
    try {
      for (;;) {
        const ack = Atomics.load(ctl, DeviceCtl.invAck);
        if (ack === seq) {
          this.syncBudgetMs = ACK_SYNC_MS;
          this.stats.syncAcks++;
          this.ackSeen();
          return true;
        }
        const left = until - performance.now();
        if (left <= 0) break;
        // Pairs with Atomics.store/notify(invAck) in InvalidationPort.check.
        Atomics.wait(ctl, DeviceCtl.invAck, ack, left);
      }
    } finally {
      // Main is awake: a device yielding to it goes on. Pairs with
      // Atomics.wait(invSleeper) in InvalidationPort.yieldToSleeper.
      Atomics.store(ctl, DeviceCtl.invSleeper, 0);
      Atomics.notify(ctl, DeviceCtl.invSleeper);
    }
    this.syncBudgetMs = ACK_SYNC_MISSED_MS;
    return false;
  }

  /** Where the device's invPolls stood when main last saw it ack, and when (pollAck's idle test). */
  private ackSeen(): void {
    this.lastAckPolls = Atomics.load(this.ctl, DeviceCtl.invPolls);
    this.lastAckAt = performance.now();
  }

  /**
   * Polls invAck while the device's invPolls moves (see waitSync); true
   * when the ack came. Not at all when the device looked for invalidations
   * less than once per LOOK_US since its last ack (asleep, or computing):
   * then the wake it needs takes longer than any poll, and an idle device
   * (most of a scenario's importers) costs main no spin.
   */
  private pollAck(seq: number, posted: number): boolean {
    const ctl = this.ctl;
    const end = posted + POLL_MAX_US / 1000;
    let polls = Atomics.load(ctl, DeviceCtl.invPolls);
    const sinceUs = (posted - this.lastAckAt) * 1000;
    if (sinceUs >= POLL_STALL_US && ((polls - this.lastAckPolls) | 0) < sinceUs / LOOK_US) return false;
    let moved = posted;
    // Pairs with Atomics.store(invAck) in InvalidationPort.check.
    while (Atomics.load(ctl, DeviceCtl.invAck) !== seq) {
      const now = performance.now();
      if (now >= end) return false;
      const p = Atomics.load(ctl, DeviceCtl.invPolls);
      if (p !== polls) {
        polls = p;
        moved = now;
      } else if (now - moved >= POLL_STALL_US / 1000) return false;
    }
    return true;
  }

  /**
   * The rest of the deadline on the event loop (Atomics.waitAsync). False
   * when the device did not ack in time: counted, reported by name, and
   * its ranges re-sent with the next batch.
   */
  private async waitAsync(seq: number, posted: number, batch: InvRange[]): Promise<boolean> {
    const ctl = this.ctl;
    const deadline = posted + this.timeoutMs;
    let dead: Error | null = null;
    const unsubscribe = this.onFailure((e) => {
      dead = e;
      Atomics.notify(ctl, DeviceCtl.invAck); // wakes the wait below
    });
    try {
      for (;;) {
        const ack = Atomics.load(ctl, DeviceCtl.invAck);
        if (ack === seq) return true;
        if (dead) throw dead;
        const left = deadline - performance.now();
        if (left <= 0) {
          this.unacked = batch;
          this.stats.timedOut++;
          this.onTimeout(this.name, seq, this.timeoutMs, batch);
          return false;
        }
        // Pairs with Atomics.store/notify(invAck) in InvalidationPort.check.
        const w = Atomics.waitAsync(ctl, DeviceCtl.invAck, ack, left);
        if (w.async) await w.value;
      }
    } finally {
      unsubscribe();
    }
  }
}

/** Slots' worth of ranges one roundTrip posts before folding the rest into covering ranges. */
const MAX_POSTS = 8;
/** How long main may block waiting for one device's ack before going back to its event loop. */
const ACK_SYNC_MS = 1;
/** The budget after a device missed it, until it acks within one again. */
const ACK_SYNC_MISSED_MS = 0.1;
/** The longest main polls an ack word before sleeping (a device that keeps looking but does not ack: invLagMs). */
const POLL_MAX_US = 100;
/** Main stops polling when the device has not looked for invalidations for this long (several DMA pieces). */
const POLL_STALL_US = 15;
/** A device that looked for invalidations less often than once per this many µs since its last ack is not streaming: not polled (a streaming one looks every DMA piece, 4-16 µs). */
const LOOK_US = 20;
/** Main gives its event loop (page requests, timers, device messages) a turn at least this often while acks keep arriving synchronously. */
const EVENT_LOOP_TURN_MS = 1;

/** A setImmediate is queued to mark the next event-loop turn; `streakStart` is when it was queued. */
let turnPending = false;
let streakStart = 0;

/**
 * Synchronous acks resolve invalidations with microtasks only, so a loop of
 * revokes would never let the event loop run (page-request service, timers,
 * comlink replies). The first ack after an event-loop turn queues a marker
 * (setImmediate) and starts a streak; an ack while the marker is still
 * queued EVENT_LOOP_TURN_MS after that waits for the turn itself. Returns
 * undefined (no wait) otherwise. Exported for its test.
 */
export function eventLoopTurnIfDue(): Promise<void> | undefined {
  if (!turnPending) {
    turnPending = true;
    streakStart = performance.now();
    setImmediate(() => (turnPending = false));
    return undefined;
  }
  if (performance.now() - streakStart < EVENT_LOOP_TURN_MS) return undefined;
  // Immediates run in order: the marker above clears turnPending first.
  return new Promise((resolve) => setImmediate(resolve));
}

/**
 * The posts of one round trip: `all` in slices of INV_BATCH. A drain
 * (BeforePost: a one-ack IOMMU flush) must ride in a post that covers
 * every range of its flush, or a device that acked the post flushing an
 * IOVA would fault walking it while its VA TLB still maps the range the
 * next post drops (sorted by address, a flush's IOVAs and its VA range
 * fall in different slices). So a round trip of several slices posts
 * them without the drains, then one more post, `all` folded into
 * INV_BATCH ranges (over-invalidation is safe), carries them: every IOVA
 * is flushed again there, so a walk between the slices' acks and that
 * post's ack refills nothing that survives the unmap.
 */
function postsOf(all: InvRange[], hooks: readonly BeforePost[]): { ranges: InvRange[]; hooks: readonly BeforePost[] }[] {
  if (all.length <= INV_BATCH) return [{ ranges: all, hooks }];
  const out: { ranges: InvRange[]; hooks: readonly BeforePost[] }[] = [];
  for (let i = 0; i < all.length; i += INV_BATCH) out.push({ ranges: all.slice(i, i + INV_BATCH), hooks: [] });
  if (hooks.length > 0) out.push({ ranges: coalesce(all, INV_BATCH), hooks });
  return out;
}

/**
 * Sorts, merges overlapping/adjacent ranges, and folds the tail so at most
 * `max` remain. A range merged with none is passed on as it is (no new
 * object: a 64-range storm round rarely merges any); a merge makes a new one.
 */
export function coalesce(ranges: readonly InvRange[], max: number): InvRange[] {
  const s = [...ranges].sort((a, b) => a.start - b.start);
  const out: InvRange[] = [];
  for (const r of s) {
    const last = out.length > 0 ? out[out.length - 1] : null;
    if (last === null || r.start > last.end) out.push(r);
    else if (r.end > last.end) out[out.length - 1] = { start: last.start, end: r.end };
  }
  while (out.length > max) {
    // Merge the pair with the smallest gap (over-invalidates the gap).
    let best = 0;
    for (let i = 1; i < out.length - 1; i++) if (out[i + 1].start - out[i].end < out[best + 1].start - out[best].end) best = i;
    out.splice(best, 2, { start: out[best].start, end: out[best + 1].end });
  }
  return out;
}
