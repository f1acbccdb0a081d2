/**
 * Device side of an invalidation broadcast (the importer's half of
 * mmu_interval_notifier_ops.invalidate, done in "hardware").
 *
 *   main (kernel)                         device worker
 *   -------------                         -------------
 *   write ranges, invCount                check(): seq = Atomics.load(invSeq)
 *   Atomics.store(invSeq, seq)            if seq != invAck:
 *   ringWake(ctl)                           drop translations in the ranges
 *   waitAsync(invAck != old)                Atomics.store(invAck, seq)
 *   (or, a sync waiter whose poll gave up:  Atomics.notify(invAck)
 *    store(invSleeper, seq);                load(invSleeper) == seq, and
 *    load(invAck); Atomics.wait(invAck)      more work to do: spin, then
 *    ... store(invSleeper, 0); notify)        wait(invSleeper) <= 1 ms
 *   [Required: after invAck == seq, no DMA of this device uses a
 *    translation of the ranges made before seq]
 *   [Required: main clears invSleeper as soon as it wakes, or the device
 *    sits out ACK_YIELD_MS]
 *
 * check() runs at the top of each device-loop pass and between DMA chunks,
 * so latency is bounded by one chunk (DMA_CHECK_BYTES).
 *
 * Fault-injection knobs (DeviceCtl, written by main): invDelayMs sleeps
 * before serving (the device stops, then acks late); invLagMs leaves a
 * posted batch unserved for that long while the device goes on DMAing
 * through its old translations (slow but legal: until it acks, the kernel
 * must keep the old targets alive); invIgnore acks without dropping the
 * device's own translations (rogue).
 */
import { DeviceCtl, DeviceStats, INV_RANGE_WORDS, InvRange } from '../../src/shm/device_ctl.js';
import { loadU64 } from '../../src/shm/layout.js';
import { TraceEvent, traceSink } from '../../src/shm/trace_ring.js';

export type InvalidateHook = (start: number, end: number, seq: number) => void;

/**
 * Who a hook belongs to: the device model's own caches ('device': the
 * device TLB, which a rogue device with invIgnore keeps), or the IOMMU
 * ('iommu': the IOTLB is not the device's to ignore, so it is flushed even
 * for a rogue device — that is what makes the IOMMU a containment).
 */
export type HookOwner = 'device' | 'iommu';

export class InvalidationPort {
  private readonly hooks: InvalidateHook[] = [];
  private readonly iommuHooks: InvalidateHook[] = [];
  private readonly ranges: number[] = [];
  private readonly sleeper = new Int32Array(new SharedArrayBuffer(4));
  /** The batch first seen while invLagMs was set, and when (worker clock). */
  private lagSeq = 0;
  private lagSince = 0;

  constructor(
    private readonly ctl: Int32Array,
    private readonly stats: Float64Array,
  ) {}

  /** Registers a translation cache (device TLB, IOTLB) to be flushed. */
  addHook(h: InvalidateHook, owner: HookOwner = 'device'): void {
    (owner === 'iommu' ? this.iommuHooks : this.hooks).push(h);
  }

  /**
   * How long a wait of at most `ms` may sleep: a batch held back by
   * invLagMs must be served when its lag ends, not at the end of a long
   * sleep (the lag models a slow device, not a sleeping one).
   */
  sleepBound(ms: number): number {
    if (this.lagSeq === 0 || Atomics.load(this.ctl, DeviceCtl.invAck) === this.lagSeq) return ms;
    const left = Atomics.load(this.ctl, DeviceCtl.invLagMs) - (performance.now() - this.lagSince);
    return Math.max(0, Math.min(ms, Math.ceil(left)));
  }

  /** Is an invalidation posted and not acked yet? Two loads; the DMA engine polls it while it decodes a step and between the pieces it copies. */
  pending(): boolean {
    this.ctl[DeviceCtl.invPolls]++; // a plain store: one writer, and main only watches it move
    return Atomics.load(this.ctl, DeviceCtl.invSeq) !== Atomics.load(this.ctl, DeviceCtl.invAck);
  }

  /**
   * Serves a pending invalidation; returns true when one was acked.
   * `yieldToMain`: the caller goes on working after the ack (a DMA
   * checkpoint), so an ack to a sleeping main steps off the core
   * (yieldToSleeper); the loop's own pass says false, since a device with
   * nothing to do sleeps next anyway and a spin would only cost main.
   */
  check(yieldToMain = true): boolean {
    this.ctl[DeviceCtl.invPolls]++;
    let seq = Atomics.load(this.ctl, DeviceCtl.invSeq);
    if (seq === Atomics.load(this.ctl, DeviceCtl.invAck)) return false;
    const lag = Atomics.load(this.ctl, DeviceCtl.invLagMs);
    if (lag > 0) {
      const now = performance.now();
      if (seq !== this.lagSeq) {
        this.lagSeq = seq;
        this.lagSince = now;
      }
      if (now - this.lagSince < lag) return false;
    }
    const delay = Atomics.load(this.ctl, DeviceCtl.invDelayMs);
    if (delay > 0) Atomics.wait(this.sleeper, 0, 0, delay);
    // Seqcount read side: re-read if main posted a newer batch meanwhile, or
    // is rewriting the slot (invWriting odd or moved: main posts to a parked
    // device without waiting for its ack, and after a timed-out batch).
    // Pairs with post() in src/kernel/invalidate_broadcast.ts.
    for (;;) {
      const w0 = Atomics.load(this.ctl, DeviceCtl.invWriting);
      if ((w0 & 1) !== 0) continue; // main is mid-write: a few stores, it never blocks there
      this.ranges.length = 0;
      const n = Atomics.load(this.ctl, DeviceCtl.invCount);
      for (let i = 0; i < n; i++) {
        const w = DeviceCtl.invRanges + i * INV_RANGE_WORDS;
        this.ranges.push(loadU64(this.ctl, w + InvRange.start), loadU64(this.ctl, w + InvRange.end));
      }
      const again = Atomics.load(this.ctl, DeviceCtl.invSeq);
      if (again === seq && Atomics.load(this.ctl, DeviceCtl.invWriting) === w0) break;
      seq = again;
    }
    const ignore = Atomics.load(this.ctl, DeviceCtl.invIgnore) !== 0;
    for (let i = 0; i < this.ranges.length; i += 2) {
      for (const h of this.iommuHooks) h(this.ranges[i], this.ranges[i + 1], seq);
      if (!ignore) for (const h of this.hooks) h(this.ranges[i], this.ranges[i + 1], seq);
    }
    this.stats[DeviceStats.invalidations]++;
    traceSink.w?.instant(TraceEvent.InvalidationAck, seq, this.ranges.length / 2, this.ranges[0] ?? 0, this.ranges[this.ranges.length - 1] ?? 0);
    // Pairs with the waitAsync on invAck in the kernel's broadcast.
    Atomics.store(this.ctl, DeviceCtl.invAck, seq);
    Atomics.notify(this.ctl, DeviceCtl.invAck);
    if (yieldToMain) this.yieldToSleeper(seq);
    return true;
  }

  /**
   * Main gave up polling for this ack and sleeps on it (invSleeper = seq):
   * it stopped seeing the device run while it polled, so the two may
   * share a core (or another thread preempted the device), and the ack's
   * wake then makes main runnable behind a streaming device that keeps the
   * core for the rest of its time slice (traced under load: post to ack
   * ~40 µs, ack to main awake 3-5 ms in the slowest 1-2 % of revokes, in
   * runs where not one poll succeeded). Hardware that acks takes no host
   * CPU: the device waits for main to be awake and clear the word, first
   * spinning ACK_SPIN_MS (main woken on a core of its own is back within
   * that, and a sleep would cost the device its own wake), then stepping
   * off the core (a futex sleep), as a directed yield (the kernel's
   * yield_to) hands the CPU to the thread it waits for; ACK_YIELD_MS at
   * most when main cannot run. Pairs with the store of invSleeper before
   * main's Atomics.wait: each side stores its word, then loads the
   * other's (seq-cst), so either main sees the ack before sleeping or the
   * device sees it asleep.
   */
  private yieldToSleeper(seq: number): void {
    const ctl = this.ctl;
    if (Atomics.load(ctl, DeviceCtl.invSleeper) !== seq) return;
    const until = performance.now() + ACK_SPIN_MS;
    while (performance.now() < until) if (Atomics.load(ctl, DeviceCtl.invSleeper) !== seq) return;
    this.stats[DeviceStats.ackYields]++;
    Atomics.wait(ctl, DeviceCtl.invSleeper, seq, ACK_YIELD_MS);
  }
}

/** How long a device that acked a sleeping main spins for main to be awake before it yields its core (yieldToSleeper). */
const ACK_SPIN_MS = 0.02;
/** Longest a device that acked yields its core to the sleeping main thread (yieldToSleeper). */
const ACK_YIELD_MS = 1;
