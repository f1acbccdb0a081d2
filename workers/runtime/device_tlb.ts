/**
 * A device TLB: the importer's cache of process translations, filled by
 * page requests to the kernel and emptied by invalidations.
 *
 * Mirrors lib/test_hmm.c's importer pattern (dmirror_range_fault +
 * dmirror_interval_invalidate) split across the two threads: the kernel
 * side (src/drivers/importer_binding.ts) does readBegin -> hmmRangeFault
 * (-EBUSY -> retry) -> driver lock -> readRetry -> reply; this side does
 * the install, and its own retry test for the window between the reply
 * and the install (the page-request protocol is drawn in
 * src/shm/tlb_layout.ts). The whole loop gives up with EBUSY after
 * HMM_RANGE_DEFAULT_TIMEOUT (1000 ms), as dmirror_range_fault does.
 *
 * Fault-ahead (an ATS-style prefetch): a streaming caller may post the
 * request for the next window with prefetch() and go on copying; the
 * kernel serves it meanwhile, and the next fault() collects the reply
 * instead of asking and waiting. The mailbox holds PRI_GROUPS requests
 * (page request groups, src/shm/tlb_layout.ts): a fault whose page no
 * prefetch in flight covers posts its own request in a free group at once
 * (one group is kept for it), rather than first waiting for the prefetch's
 * reply.
 * The retry test covers each group the same way: an invalidation of its
 * range served after its post and before its install (the device keeps
 * serving them while it copies) makes its reply (a sparse one's entry of
 * that page) unusable.
 *
 * Sparse requests (a PRI page request group): with `sparse`, a request
 * asks only for the pages of its window this TLB cannot use (a bit per
 * page in the mailbox's mask), and only those are installed from the
 * reply: the holes a revoke punched among held pages cost the kernel
 * their own mapping, not the whole window's. An invalidation of an asked
 * page while the request is in flight voids that page's entry only (it
 * refaults); a dense request's reply is void as a whole.
 *
 * Driver-installed translations (dmirror_migrate_finalize_and_map): after
 * migrating pages into this device's memory the driver posts their entries
 * into the DriverMap ring, beside the page-request mailbox
 * (src/shm/driver_map_layout.ts); collectMap() installs every pending post, before any page request and before serving any
 * invalidation, so an invalidation posted after them drops them.
 *
 * Every entry records the page generation (and the target page) it was
 * made from, so the safety checker can tell a stale use from a good one.
 * Entries live in typed arrays (blocks of TLB_BLOCK consecutive VA
 * pages): no object per page, and a stream's lookups are array indexes.
 *
 * Threading: worker only. The invalidation hook runs on this thread
 * (InvalidationPort.check), so "holding the driver lock" here means "not
 * calling check()" — install is atomic with respect to acks.
 */
import { PAGE_SIZE } from '../../src/shm/constants.js';
import { DeviceCtl, DeviceStats } from '../../src/shm/device_ctl.js';
import { HMM_PFN_DEVICE_PRIVATE, HMM_PFN_WRITE } from '../../src/shm/hmm_pfn.js';
import { loadU64, storeU64 } from '../../src/shm/layout.js';
import type { DeviceShm } from '../../src/shm/phys_mem.js';
import { DriverMap, takeMapPosts, type MapInstall } from '../../src/shm/driver_map_layout.js';
import { errnoCode, errnoName, PageRequest, pageAsked, priGroup, PriMailbox, PRI_GROUPS, ReplyEntry, REQ_MASK_WORDS, SPARSE_SPAN, ViolationKind, type ErrnoName } from '../../src/shm/tlb_layout.js';
import type { InvalidationPort } from './invalidation.js';
import { TraceEvent, traceSink } from '../../src/shm/trace_ring.js';

/** HMM_RANGE_DEFAULT_TIMEOUT. */
export const FAULT_RETRY_MS = 1000;
/** A kernel that does not answer a page request at all within this is reported. */
const REPLY_DEADLINE_MS = 5000;
const WAIT_SLICE_MS = 20;

/** One translation, as lookup() returns it (a copy: the TLB itself holds typed arrays). */
export interface TlbEntry {
  readonly devAddr: number;
  readonly flags: number;
  readonly gen: number;
  readonly mem: number;
  readonly page: number;
}

/** Do two lookups name the same translation? (lookup() returns copies, so identity says nothing.) */
export function sameEntry(a: TlbEntry | undefined, b: TlbEntry): boolean {
  return a !== undefined && a.devAddr === b.devAddr && a.flags === b.flags && a.gen === b.gen && a.mem === b.mem && a.page === b.page;
}

const TLB_BLOCK_SHIFT = 9;
const TLB_BLOCK = 1 << TLB_BLOCK_SHIFT;
/** Int32 words per entry in a block: flags word, generation, target memory, target page. */
const W_FLAGS = 0;
const W_GEN = 1;
const W_MEM = 2;
const W_PAGE = 3;
const WORDS = 4;
/** Flags-word bits of our own, above the HMM_PFN_* bits: the entry is present; it was dropped by an invalidation (its next fault is a refault). */
const PRESENT = 1 << 30;
const DROPPED = 1 << 29;
const HMM_BITS = DROPPED - 1;

/** TLB_BLOCK consecutive VA pages: device address of each, and WORDS words per page. */
interface Block {
  readonly addr: Float64Array;
  readonly w: Int32Array;
}

/**
 * One page request group of the mailbox, as the device tracks it: the
 * request in flight there (busy until its reply is collected), the range
 * it asked for, and what invalidations voided since its post (the
 * worker-side retry test, per group).
 */
interface Group {
  /** PageRequest offsets address this group. */
  readonly view: Int32Array;
  busy: boolean;
  /** Its reply was seen in (collectAnswered's mark between its look and its install). */
  ready: boolean;
  /** Posted by prefetch(): nobody waits on it; collected by collectAnswered or a fault it covers. */
  ahead: boolean;
  seq: number;
  start: number;
  end: number;
  write: boolean;
  /**
   * performance.now() at the post: a prefetch's trace slice spans post to install, unless a fault
   * collects it: then from the fault's start (collectFrom), since the post may lie in an earlier DMA
   * command's slice and a slice from there would straddle that one's end (a thread's slices must nest).
   */
  postedAt: number;
  /** A dense request's reply is void as a whole (an invalidation of its range since the post, or clear()). */
  raced: boolean;
  /**
   * Pages of a sparse request (window index) invalidated since it was
   * posted: its reply's entries for them are not installed (they refault),
   * the others are (a PRI response answers each page of a group on its own:
   * an ATS invalidation of one page leaves the others' valid).
   */
  readonly racedPages: Uint8Array;
}

export class DeviceTlb {
  /** Block number (vpn >> TLB_BLOCK_SHIFT) -> block. guarded by: worker thread. */
  private readonly blocks = new Map<number, Block>();
  private lastKey = -1;
  private lastBlock: Block | null = null;
  private count = 0;
  /** The mailbox's PRI_GROUPS page request groups. guarded by: worker thread. */
  private readonly groups: Group[];
  private reqSeq: number;
  faults = 0;
  pagesFaulted = 0;
  retries = 0;
  /** Faults answered by a prefetch already in the mailbox. */
  prefetchHits = 0;
  /** Pages installed from the driver's posts (collectMap), no page request. */
  pagesMapped = 0;

  constructor(
    private readonly self: DeviceShm,
    private readonly inv: InvalidationPort,
    private readonly pri: Int32Array,
    private readonly map: Int32Array | null = null,
  ) {
    this.groups = Array.from({ length: PRI_GROUPS }, (_, g) => ({ view: priGroup(pri, g), busy: false, ready: false, ahead: false, seq: 0, start: 0, end: 0, write: false, postedAt: 0, raced: false, racedPages: new Uint8Array(SPARSE_SPAN) }));
    this.reqSeq = Atomics.load(pri, PriMailbox.bell);
    inv.addHook((s, e) => this.drop(s, e), 'device');
  }

  get size(): number {
    return this.count;
  }

  /**
   * Collects the fault-aheads whose replies are in, without waiting (see
   * collectAnswered). False while no group is free for another prefetch
   * (the kernel has not answered yet: the requests stay in flight).
   */
  collectAhead(): boolean {
    this.collectAnswered();
    return this.freeGroup(true) !== null;
  }

  /**
   * Installs every prefetch whose reply is in, without waiting: serves the
   * pending invalidations first (as awaitReply does: "takes the lock"),
   * then installs each reply seen before it unless one of them hit its
   * range (per page for a sparse one). A reply that lands after the look
   * stays for the next call. True when one of them was a window holding
   * `va` for the access. `since`: the start of the fault collecting them (collectFrom).
   */
  private collectAnswered(va = -1, write = false, since = 0): boolean {
    let any = false;
    for (const g of this.groups) {
      // Pairs with Atomics.store(replySeq) in ImporterBinding.reply.
      g.ready = g.busy && g.ahead && Atomics.load(g.view, PageRequest.replySeq) === g.seq;
      if (g.ready) any = true;
    }
    if (!any) return false;
    this.inv.check();
    let covered = false;
    for (const g of this.groups) {
      if (!g.ready) continue;
      if (windowHolds(g, va, write)) covered = true;
      this.collect(g, collectFrom(g, since));
    }
    return covered;
  }

  /** Takes group `g`'s reply (it is in): installed unless raced as a whole; the group is free again. Returns its errno. */
  private collect(g: Group, t0: number): number {
    const errno = g.view[PageRequest.replyErrno];
    if (errno === 0 && !g.raced) this.installReply(g, t0);
    g.busy = false;
    g.ready = false;
    return errno;
  }

  /**
   * A group to post in, or null: any free one for a fault; for a prefetch,
   * one that leaves another free for the fault the stream may stall on.
   */
  private freeGroup(ahead: boolean): Group | null {
    let free: Group | null = null;
    let n = 0;
    for (const g of this.groups) {
      if (g.busy) continue;
      free ??= g;
      n++;
    }
    return ahead && n < 2 ? null : free;
  }

  /** The busy group posted first (fault() waits for it when no group is free). */
  private oldest(): Group | null {
    let o: Group | null = null;
    for (const g of this.groups) if (g.busy && (o === null || ((g.seq - o.seq) | 0) < 0)) o = g;
    return o;
  }

  /** The block holding `vpn`, or null; the block of the previous call is tried first. */
  private block(vpn: number): Block | null {
    const key = Math.floor(vpn / TLB_BLOCK);
    if (key === this.lastKey) return this.lastBlock;
    const b = this.blocks.get(key);
    if (!b) return null;
    this.lastKey = key;
    this.lastBlock = b;
    return b;
  }

  /** Flags word of `vpn` (0 when absent) — PRESENT set when there is an entry. */
  private word(vpn: number, field: number): number {
    const b = this.block(vpn);
    return b === null ? 0 : b.w[(vpn & (TLB_BLOCK - 1)) * WORDS + field];
  }

  /** Is there an entry for `vpn` that allows the access (a write needs HMM_PFN_WRITE)? */
  usable(vpn: number, write: boolean): boolean {
    const f = this.word(vpn, W_FLAGS);
    return (f & PRESENT) !== 0 && (!write || (f & HMM_PFN_WRITE) !== 0);
  }

  /** Device address of `vpn`'s entry (call only when usable). */
  devAddr(vpn: number): number {
    return this.block(vpn)!.addr[vpn & (TLB_BLOCK - 1)];
  }

  flags(vpn: number): number {
    return this.word(vpn, W_FLAGS) & HMM_BITS;
  }

  gen(vpn: number): number {
    return this.word(vpn, W_GEN);
  }

  page(vpn: number): number {
    return this.word(vpn, W_PAGE);
  }

  /**
   * The safety checker's test of one page of a run made through `vpn`'s
   * entry, in one block lookup: 0 when the entry names target page `page`
   * of memory `mem` at its live generation `live`; else the violation.
   */
  verify(vpn: number, mem: number, page: number, live: number): 0 | ViolationKind {
    const b = this.block(vpn);
    if (b === null) return ViolationKind.Remapped;
    const w = (vpn & (TLB_BLOCK - 1)) * WORDS;
    if ((b.w[w + W_FLAGS] & PRESENT) === 0 || b.w[w + W_MEM] !== mem || b.w[w + W_PAGE] !== page) return ViolationKind.Remapped;
    return b.w[w + W_GEN] === live ? 0 : ViolationKind.StaleGeneration;
  }

  /** A copy of `vpn`'s entry, or undefined. */
  lookup(vpn: number): TlbEntry | undefined {
    const b = this.block(vpn);
    if (b === null) return undefined;
    const i = vpn & (TLB_BLOCK - 1);
    const w = i * WORDS;
    if ((b.w[w + W_FLAGS] & PRESENT) === 0) return undefined;
    return { devAddr: b.addr[i], flags: b.w[w + W_FLAGS] & HMM_BITS, gen: b.w[w + W_GEN], mem: b.w[w + W_MEM], page: b.w[w + W_PAGE] };
  }

  /**
   * Pages from `vpn` (at most `max`, the first usable) whose entries are
   * contiguous in device address space, of one kind (device-private or
   * not) and allow the access: one DMA run.
   */
  runPages(vpn: number, max: number, write: boolean): number {
    const priv = this.word(vpn, W_FLAGS) & HMM_PFN_DEVICE_PRIVATE;
    const need = PRESENT | (write ? HMM_PFN_WRITE : 0);
    let addr = this.devAddr(vpn);
    let n = 1;
    // Block by block: the inner loop is typed-array reads only.
    while (n < max) {
      const b = this.block(vpn + n);
      if (b === null) break;
      const w = b.w;
      const a = b.addr;
      const i0 = (vpn + n) & (TLB_BLOCK - 1);
      const i1 = Math.min(TLB_BLOCK, i0 + (max - n));
      let i = i0;
      for (; i < i1; i++) {
        const f = w[i * WORDS + W_FLAGS];
        if ((f & need) !== need || (f & HMM_PFN_DEVICE_PRIVATE) !== priv || a[i] !== addr + PAGE_SIZE) break;
        addr += PAGE_SIZE;
      }
      n += i - i0;
      if (i < i1) break;
    }
    return n;
  }

  /**
   * The safety checker's test of `count` pages of a run made through the
   * entries from `vpn` on, against target pages page0.. of memory `mem`
   * whose live generations are in `gen`: the index of the first page that
   * does not match (its kind from verify()), or -1.
   */
  verifyRun(vpn: number, count: number, mem: number, page0: number, gen: Int32Array): number {
    let k = 0;
    while (k < count) {
      const b = this.block(vpn + k);
      if (b === null) return k;
      const w = b.w;
      const i0 = (vpn + k) & (TLB_BLOCK - 1);
      const i1 = Math.min(TLB_BLOCK, i0 + (count - k));
      for (let i = i0; i < i1; i++, k++) {
        const x = i * WORDS;
        const page = page0 + k;
        if ((w[x + W_FLAGS] & PRESENT) === 0 || w[x + W_MEM] !== mem || w[x + W_PAGE] !== page || w[x + W_GEN] !== Atomics.load(gen, page)) return k;
      }
    }
    return -1;
  }

  private install(vpn: number, devAddr: number, flags: number, gen: number, mem: number, page: number): boolean {
    const key = Math.floor(vpn / TLB_BLOCK);
    let b = key === this.lastKey ? this.lastBlock : (this.blocks.get(key) ?? null);
    if (b === null) {
      b = { addr: new Float64Array(TLB_BLOCK), w: new Int32Array(TLB_BLOCK * WORDS) };
      this.blocks.set(key, b);
    }
    const i = vpn & (TLB_BLOCK - 1);
    const w = i * WORDS;
    const old = b.w[w + W_FLAGS];
    if ((old & PRESENT) === 0) this.count++;
    b.addr[i] = devAddr;
    b.w[w + W_FLAGS] = (flags & HMM_BITS) | PRESENT;
    b.w[w + W_GEN] = gen;
    b.w[w + W_MEM] = mem;
    b.w[w + W_PAGE] = page;
    return (old & DROPPED) !== 0;
  }

  /**
   * Installs every post pending in the DriverMap ring (slots doneSeq+1 ..
   * postSeq, in order): every entry whose flags are set. Runs before
   * any invalidation is served (drop) and before a page request, so an
   * invalidation the kernel posted after the mailbox drops what it held.
   */
  collectMap(): void {
    if (this.map !== null) this.pagesMapped += takeMapPosts(this.map, this.installPosted);
  }

  /** takeMapPosts' install (src/shm/driver_map_layout.ts). */
  private readonly installPosted: MapInstall = (vpn, devAddr, flags, gen, mem, page) => {
    this.install(vpn, devAddr, flags, gen, mem, page);
  };

  /** Are all of [vpn, +n) usable for the access (after installing the driver's post)? */
  allUsable(vpn: number, n: number, write: boolean): boolean {
    this.collectMap();
    for (let i = 0; i < n; i++) if (!this.usable(vpn + i, write)) return false;
    return true;
  }

  /** Invalidation hook: drop [start, end); note a collision with each request in flight. */
  drop(start: number, end: number): void {
    // The driver's post came before this invalidation: install it first, so the range drops it too.
    this.collectMap();
    for (const g of this.groups) if (g.busy && g.start < end && start < g.end) this.race(g, start, end);
    if (this.count === 0) return;
    const v0 = Math.floor(start / PAGE_SIZE);
    const v1 = Math.ceil(end / PAGE_SIZE);
    const k0 = Math.floor(v0 / TLB_BLOCK);
    const k1 = Math.floor((v1 - 1) / TLB_BLOCK);
    if (k1 - k0 + 1 > this.blocks.size) {
      for (const [key, b] of this.blocks) if (key >= k0 && key <= k1) this.dropIn(key, b, v0, v1);
    } else {
      for (let key = k0; key <= k1; key++) {
        const b = this.blocks.get(key);
        if (b) this.dropIn(key, b, v0, v1);
      }
    }
  }

  private dropIn(key: number, b: Block, v0: number, v1: number): void {
    const i0 = Math.max(0, v0 - key * TLB_BLOCK);
    const i1 = Math.min(TLB_BLOCK, v1 - key * TLB_BLOCK);
    for (let i = i0; i < i1; i++) {
      const w = i * WORDS + W_FLAGS;
      if ((b.w[w] & PRESENT) !== 0) {
        b.w[w] = DROPPED;
        this.count--;
      }
    }
  }

  /** An invalidation of [start, end) met group `g`'s request in flight: a dense one's whole reply is void (raced); of a sparse one, only the asked pages in the range (racedPages). */
  private race(g: Group, start: number, end: number): void {
    const p = g.view;
    if (p[PageRequest.reqSparse] !== 1) {
      g.raced = true;
      return;
    }
    const i0 = Math.max(0, Math.floor((start - g.start) / PAGE_SIZE));
    const i1 = Math.min(p[PageRequest.reqPages], Math.ceil((end - g.start) / PAGE_SIZE));
    for (let i = i0; i < i1; i++) if (pageAsked(p, i)) g.racedPages[i] = 1;
  }

  clear(): void {
    // A post not installed yet is void too.
    if (this.map !== null) Atomics.store(this.map, DriverMap.doneSeq, Atomics.load(this.map, DriverMap.postSeq));
    this.blocks.clear();
    this.lastKey = -1;
    this.lastBlock = null;
    this.count = 0;
    for (const g of this.groups) g.raced = true; // a prefetch in flight must not install into the cleared TLB
  }

  /**
   * Posts a request for [va, +npages) without waiting for it (fault-ahead
   * along a stream); a no-op (false) when no group is free for it
   * (freeGroup) or a request in flight already asked for `va`. A later
   * fault() or collectAhead() collects the reply.
   */
  prefetch(va: number, npages: number, write: boolean, sparse = false): boolean {
    for (const g of this.groups) if (g.busy && windowHolds(g, va, write)) return false;
    const g = this.freeGroup(true);
    if (g === null) return false;
    this.post(g, va, npages, write, sparse, true);
    return true;
  }

  /**
   * Writes a request into group `g` and rings the kernel; returns its
   * sequence. `sparse`: only the pages we cannot use are asked (the mask),
   * unless that is all of them.
   */
  private post(g: Group, va: number, npages: number, write: boolean, sparse: boolean, ahead: boolean): number {
    const p = g.view;
    g.busy = true;
    g.ahead = ahead;
    g.start = va;
    g.end = va + npages * PAGE_SIZE;
    g.write = write;
    g.postedAt = performance.now();
    g.raced = false;
    g.racedPages.fill(0, 0, npages);
    storeU64(p, PageRequest.reqStart, va);
    p[PageRequest.reqPages] = npages;
    p[PageRequest.reqWrite] = write ? 1 : 0;
    p[PageRequest.reqHint] = ahead ? 1 : 0;
    p[PageRequest.reqSparse] = sparse && this.fillMask(p, Math.floor(va / PAGE_SIZE), npages, write) < npages ? 1 : 0;
    const s = (g.seq = this.reqSeq = (this.reqSeq + 1) | 0);
    // Pairs with the waitAsync on the bell in ImporterBinding.serve (src/drivers/importer_binding.ts).
    Atomics.store(p, PageRequest.reqSeq, s);
    Atomics.store(this.pri, PriMailbox.bell, s);
    Atomics.notify(this.pri, PriMailbox.bell);
    return s;
  }

  /** Sets the mask bit (in group view `p`) of each page of [v0, +npages) we cannot use for the access; returns how many. */
  private fillMask(p: Int32Array, v0: number, npages: number, write: boolean): number {
    let wanted = 0;
    for (let k = 0; k < REQ_MASK_WORDS; k++) {
      let bits = 0;
      for (let b = 0; b < 32; b++) {
        const i = k * 32 + b;
        if (i >= npages) break;
        if (!this.usable(v0 + i, write)) {
          bits |= 1 << b;
          wanted++;
        }
      }
      p[PageRequest.reqMask + k] = bits;
    }
    return wanted;
  }

  /** Waits for group `g`'s reply, serving invalidations meanwhile; then serves what is pending ("takes the lock"). False after REPLY_DEADLINE_MS (the group is given up: free). */
  private awaitReply(g: Group): boolean {
    const ctl = this.self.ctl;
    const hard = performance.now() + REPLY_DEADLINE_MS;
    for (;;) {
      const seen = Atomics.load(ctl, DeviceCtl.wake);
      this.inv.check(); // keep acking invalidations while we wait
      // Pairs with Atomics.store(replySeq) + ringWake in ImporterBinding.reply.
      if (Atomics.load(g.view, PageRequest.replySeq) === g.seq) break;
      if (performance.now() > hard) {
        g.busy = false;
        return false;
      }
      Atomics.wait(ctl, DeviceCtl.wake, seen, this.inv.sleepBound(WAIT_SLICE_MS));
    }
    this.inv.check(); // "take the lock": serve what is pending, then install without checking again
    return true;
  }

  /**
   * Faults [va, +npages) in (write: REQ_WRITE). Returns 0 or an errno name;
   * `message` holds the kernel's reason on failure. Prefetches already
   * answered are installed first; one in flight that covers `va` is waited
   * for; else the request goes out in a free group at once.
   */
  fault(va: number, npages: number, write: boolean, sparse = false): 0 | ErrnoName {
    const t0 = performance.now();
    const vpn = Math.floor(va / PAGE_SIZE);
    const a = this.covering(va, write);
    if (a !== null) {
      Atomics.store(a.view, PageRequest.reqHint, 0); // we wait for it now: the kernel serves it first
      if (!this.awaitReply(a)) return this.done('ETIMEDOUT', t0);
      const errno = this.collect(a, t0);
      // Else our page was invalidated while the request was in flight (or the kernel said EBUSY).
      if (!this.usable(vpn, write) && (errno === 0 || errno === errnoCode('EBUSY'))) this.retries++;
    }
    // A hit only when a prefetch's window held `va`: a caller faulting a window whose first page it already holds still asks for the rest.
    const answered = this.collectAnswered(va, write, t0);
    if ((answered || a !== null) && this.usable(vpn, write)) {
      this.prefetchHits++;
      return this.done(0, t0);
    }
    if (answered && a === null) this.retries++; // a reply for our page came in void (raced): asked again below
    this.collectMap();
    const giveUp = t0 + FAULT_RETRY_MS;
    for (;;) {
      if (performance.now() > giveUp) return this.done('EBUSY', t0);
      const g = this.groupForFault(t0);
      this.post(g, va, npages, write, sparse, false);
      if (!this.awaitReply(g)) return this.done('ETIMEDOUT', t0);
      const raced = g.raced;
      const errno = this.collect(g, t0);
      if (errno === errnoCode('EBUSY') || (errno === 0 && raced)) {
        this.retries++;
        continue;
      }
      if (errno !== 0) {
        traceSink.w?.emit(TraceEvent.PageRequest, performance.timeOrigin + t0, performance.now() - t0, va, npages, errno, 0, this.retries);
        return this.done(errnoName(errno), t0);
      }
      // A sparse reply leaves out pages invalidated in flight: ours among them, ask again.
      if (g.view[PageRequest.reqSparse] === 1 && g.racedPages[0] !== 0) {
        this.retries++;
        continue;
      }
      return this.done(0, t0);
    }
  }

  /** Will a request in flight bring read access to `va` (a prefetch that asks for it, not voided)? workers/runtime/hole_skip.ts. */
  awaiting(va: number): boolean {
    return this.covering(va, false) !== null;
  }

  /**
   * A prefetch in flight that will answer for `va`, or null: its window
   * holds `va` for the access, it is not void as a whole, and, sparse, it
   * asked for `va`'s page and no invalidation voided that page since (a
   * hole a revoke punched after the post is asked for at once, not after
   * a reply that will not carry it).
   */
  private covering(va: number, write: boolean): Group | null {
    for (const g of this.groups) {
      if (!g.busy || !g.ahead || g.raced || !windowHolds(g, va, write)) continue;
      if (g.view[PageRequest.reqSparse] !== 1) return g;
      const i = Math.floor((va - g.start) / PAGE_SIZE);
      if (pageAsked(g.view, i) && g.racedPages[i] === 0) return g;
    }
    return null;
  }

  /** A free group for a fault; when none is, the oldest request is waited for and collected first (given up at its reply deadline: then free). */
  private groupForFault(since: number): Group {
    for (;;) {
      const free = this.freeGroup(false);
      if (free !== null) return free;
      const o = this.oldest()!;
      Atomics.store(o.view, PageRequest.reqHint, 0);
      if (!this.awaitReply(o)) continue; // given up: free now
      this.collect(o, collectFrom(o, since));
    }
  }

  /**
   * Installs group `g`'s reply: every entry, or with a sparse request only
   * those its mask asked and no invalidation voided since the post.
   */
  private installReply(g: Group, t0: number): void {
    const p = g.view;
    const n = p[PageRequest.replyPages];
    const sparse = p[PageRequest.reqSparse] === 1;
    const v0 = Math.floor(g.start / PAGE_SIZE);
    let refaulted = 0;
    let installed = 0;
    for (let i = 0, k = 0; i < n; i++) {
      if (sparse && !pageAsked(p, i)) continue;
      // A sparse reply holds the asked pages' entries only, in order; a page invalidated since the post is left out.
      const w = PageRequest.entries + (sparse ? k++ : i) * ReplyEntry.kFieldCount;
      if (sparse && g.racedPages[i] !== 0) continue;
      if (this.install(v0 + i, loadU64(p, w + ReplyEntry.devAddr), p[w + ReplyEntry.flags], p[w + ReplyEntry.gen], p[w + ReplyEntry.mem], p[w + ReplyEntry.page])) refaulted++;
      installed++;
    }
    this.faults++;
    this.pagesFaulted += installed;
    this.self.stats[DeviceStats.pagesRefaulted] += refaulted;
    traceSink.w?.emit(TraceEvent.PageRequest, performance.timeOrigin + t0, performance.now() - t0, g.start, installed, 0, refaulted, this.retries);
  }

  private done<T>(r: T, t0: number): T {
    this.self.stats[DeviceStats.faultWaitNs] += (performance.now() - t0) * 1e6;
    return r;
  }
}

/** Where the trace slice of prefetch `g`'s install starts when a fault that started at `since` collects it (Group.postedAt). */
function collectFrom(g: Group, since: number): number {
  return Math.max(g.postedAt, since);
}

/** Does group `g`'s window hold `va` for the access (a write needs a write request)? */
function windowHolds(g: Group, va: number, write: boolean): boolean {
  return g.start <= va && va < g.end && (g.write || !write);
}
