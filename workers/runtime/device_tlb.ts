/**
 * A device TLB: the importer's cache of process translations, filled by
 * page requests to the kernel and emptied by invalidations.
 *
 * Mirrors lib/test_hmm.c's importer pattern (dmirror_range_fault +
 * dmirror_interval_invalidate) split across the two threads: the kernel
 * side (src/drivers/mirror_driver.ts) does readBegin -> hmmRangeFault
 * (-EBUSY -> retry) -> driver lock -> readRetry -> reply; this side does
 * the install, and its own retry test for the window between the reply
 * and the install (the page-request protocol is drawn in
 * src/shm/tlb_layout.ts). The whole loop gives up with EBUSY after
 * HMM_RANGE_DEFAULT_TIMEOUT (1000 ms), as dmirror_range_fault does.
 *
 * Every entry records the page generation (and the target page) it was
 * made from, so the safety checker can tell a stale use from a good one.
 *
 * Threading: worker only. The invalidation hook runs on this thread
 * (InvalidationPort.check), so "holding the driver lock" here means "not
 * calling check()" — install is atomic with respect to acks.
 */
import { PAGE_SIZE } from '../../src/shm/constants.js';
import { DeviceCtl, DeviceStats } from '../../src/shm/device_ctl.js';
import { loadU64, storeU64 } from '../../src/shm/layout.js';
import type { DeviceShm } from '../../src/shm/phys_mem.js';
import { errnoCode, errnoName, PageRequest, ReplyEntry, type ErrnoName } from '../../src/shm/tlb_layout.js';
import type { InvalidationPort } from './invalidation.js';
import { TraceEvent, traceSink } from '../../src/shm/trace_ring.js';

/** HMM_RANGE_DEFAULT_TIMEOUT. */
export const FAULT_RETRY_MS = 1000;
/** A kernel that does not answer a page request at all within this is reported. */
const REPLY_DEADLINE_MS = 5000;
const WAIT_SLICE_MS = 20;

export interface TlbEntry {
  readonly devAddr: number;
  readonly flags: number;
  readonly gen: number;
  readonly mem: number;
  readonly page: number;
}

/**
 * Entries are kept in blocks of TLB_BLOCK consecutive VA pages (a fault
 * window fills whole blocks): a lookup is one block find — the block of the
 * previous lookup is tried first, so a stream costs an array index per page
 * — instead of a Map probe keyed by a 35-bit page number (not a small
 * integer, so hashed as a double).
 */
const TLB_BLOCK_SHIFT = 9;
const TLB_BLOCK = 1 << TLB_BLOCK_SHIFT;

export class DeviceTlb {
  /** Block number (vpn / TLB_BLOCK) -> the block's entries. guarded by: worker thread. */
  private readonly blocks = new Map<number, (TlbEntry | undefined)[]>();
  private lastKey = -1;
  private lastBlock: (TlbEntry | undefined)[] | null = null;
  private count = 0;
  /** The range of the page request in flight, for the worker-side retry test. */
  private outstanding: { start: number; end: number } | null = null;
  private raced = false;
  private reqSeq: number;
  /** Pages an invalidation dropped and no fault has brought back yet: the next fault of one is a refault. */
  private readonly dropped = new Set<number>();
  faults = 0;
  pagesFaulted = 0;
  retries = 0;

  constructor(
    private readonly self: DeviceShm,
    private readonly inv: InvalidationPort,
    private readonly pri: Int32Array,
  ) {
    this.reqSeq = Atomics.load(pri, PageRequest.reqSeq);
    inv.addHook((s, e) => this.drop(s, e), 'device');
  }

  get size(): number {
    return this.count;
  }

  lookup(vpn: number): TlbEntry | undefined {
    const key = Math.floor(vpn / TLB_BLOCK);
    if (key === this.lastKey) return this.lastBlock![vpn - key * TLB_BLOCK];
    const b = this.blocks.get(key);
    if (!b) return undefined;
    this.lastKey = key;
    this.lastBlock = b;
    return b[vpn - key * TLB_BLOCK];
  }

  private set(vpn: number, e: TlbEntry): void {
    const key = Math.floor(vpn / TLB_BLOCK);
    let b = key === this.lastKey ? this.lastBlock! : this.blocks.get(key);
    if (!b) {
      b = new Array<TlbEntry | undefined>(TLB_BLOCK).fill(undefined);
      this.blocks.set(key, b);
    }
    const i = vpn - key * TLB_BLOCK;
    if (b[i] === undefined) this.count++;
    b[i] = e;
  }

  /** Invalidation hook: drop [start, end); note a collision with the request in flight. */
  drop(start: number, end: number): void {
    const o = this.outstanding;
    if (o && o.start < end && start < o.end) this.raced = true;
    if (this.count === 0) return;
    const v0 = Math.floor(start / PAGE_SIZE);
    const v1 = Math.ceil(end / PAGE_SIZE);
    const k0 = Math.floor(v0 / TLB_BLOCK);
    const k1 = Math.floor((v1 - 1) / TLB_BLOCK);
    const dropBlock = (key: number, b: (TlbEntry | undefined)[]) => {
      const i0 = Math.max(0, v0 - key * TLB_BLOCK);
      const i1 = Math.min(TLB_BLOCK, v1 - key * TLB_BLOCK);
      for (let i = i0; i < i1; i++) {
        if (b[i] !== undefined) {
          b[i] = undefined;
          this.count--;
          this.dropped.add(key * TLB_BLOCK + i);
        }
      }
    };
    if (k1 - k0 + 1 > this.blocks.size) {
      for (const [key, b] of this.blocks) if (key >= k0 && key <= k1) dropBlock(key, b);
    } else {
      for (let key = k0; key <= k1; key++) {
        const b = this.blocks.get(key);
        if (b) dropBlock(key, b);
      }
    }
  }

  clear(): void {
    this.blocks.clear();
    this.lastKey = -1;
    this.lastBlock = null;
    this.count = 0;
  }

  /**
   * Faults [va, +npages) in (write: REQ_WRITE). Returns 0 or an errno name;
   * `message` holds the kernel's reason on failure.
   */
  fault(va: number, npages: number, write: boolean): 0 | ErrnoName {
    const p = this.pri;
    const ctl = this.self.ctl;
    const t0 = performance.now();
    const giveUp = t0 + FAULT_RETRY_MS;
    for (;;) {
      if (performance.now() > giveUp) return this.done('EBUSY', t0);
      this.outstanding = { start: va, end: va + npages * PAGE_SIZE };
      this.raced = false;
      storeU64(p, PageRequest.reqStart, va);
      p[PageRequest.reqPages] = npages;
      p[PageRequest.reqWrite] = write ? 1 : 0;
      const s = (this.reqSeq = (this.reqSeq + 1) | 0);
      // Pairs with the waitAsync on reqSeq in ImporterBinding.serve (src/drivers/importer_binding.ts).
      Atomics.store(p, PageRequest.reqSeq, s);
      Atomics.notify(p, PageRequest.reqSeq);
      const hard = performance.now() + REPLY_DEADLINE_MS;
      for (;;) {
        const seen = Atomics.load(ctl, DeviceCtl.wake);
        this.inv.check(); // keep acking invalidations while we wait
        // Pairs with Atomics.store(replySeq) + ringWake in ImporterBinding.reply.
        if (Atomics.load(p, PageRequest.replySeq) === s) break;
        if (performance.now() > hard) return this.done('ETIMEDOUT', t0);
        Atomics.wait(ctl, DeviceCtl.wake, seen, this.inv.sleepBound(WAIT_SLICE_MS));
      }
      this.inv.check(); // "take the lock": serve what is pending, then install without checking again
      const errno = p[PageRequest.replyErrno];
      if (errno === errnoCode('EBUSY') || (errno === 0 && this.raced)) {
        this.retries++;
        continue;
      }
      if (errno !== 0) {
        traceSink.w?.emit(TraceEvent.PageRequest, performance.timeOrigin + t0, performance.now() - t0, va, npages, errno, 0, this.retries);
        return this.done(errnoName(errno), t0);
      }
      const n = p[PageRequest.replyPages];
      const v0 = Math.floor(va / PAGE_SIZE);
      let refaulted = 0;
      for (let i = 0; i < n; i++) {
        const w = PageRequest.entries + i * ReplyEntry.kFieldCount;
        if (this.dropped.delete(v0 + i)) refaulted++;
        this.set(v0 + i, {
          devAddr: loadU64(p, w + ReplyEntry.devAddr),
          flags: p[w + ReplyEntry.flags],
          gen: p[w + ReplyEntry.gen],
          mem: p[w + ReplyEntry.mem],
          page: p[w + ReplyEntry.page],
        });
      }
      this.faults++;
      this.pagesFaulted += n;
      this.self.stats[DeviceStats.pagesRefaulted] += refaulted;
      traceSink.w?.emit(TraceEvent.PageRequest, performance.timeOrigin + t0, performance.now() - t0, va, n, 0, refaulted, this.retries);
      return this.done(0, t0);
    }
  }

  private done<T>(r: T, t0: number): T {
    this.self.stats[DeviceStats.faultWaitNs] += (performance.now() - t0) * 1e6;
    this.outstanding = null;
    return r;
  }
}
