/**
 * BAR space management: a device's BAR2 window is smaller than its memory,
 * so the driver maps device pages into BAR slots on demand and recycles
 * slots under pressure (DESIGN.md section 3; the RFC leaves this to
 * drivers: "BAR space management lives in the driver").
 *
 * Recycling policy (makeRoomLocked, heldVictims): slots nobody holds go
 * first (no invalidation). Then drop-behind along the requesting stream:
 * the pages it holds nearest behind the faulting address, cyclically
 * within the exporter's mapping, except the hold it is still streaming
 * through. An importer cycling through buffers larger than the window (a
 * camera refilling frame buffers in turn) needs the pages it passed last
 * furthest in the future, so this is Belady's choice for it; LRU would
 * evict exactly the buffer needed next, and every frame would refault in
 * full (measured: 26,110 of 28,800 pages per 32 frames, against 7,836
 * now). Least recently mapped slots of anyone are the fallback. Victims
 * are revoked as runs of adjacent VA pages per owner: one mmu-notifier
 * range per run, all in one batch.
 *
 * Holds: every p2p map of a range by an importer is one hold — (owner =
 * importer + process, VA start, the slot of each page) — registered with
 * one call, not one record per page. A slot's `users` counts the live
 * holds on it. The importer's p2p_unmap releases its hold on a range
 * (release): a slot nobody holds can be taken for another page at once,
 * with no invalidation, because no importer has a translation through it.
 *
 * Recycling a slot someone holds (the only way a bus address changes
 * meaning while in use):
 *
 *   main (BarManager.mapPages)              importer device worker
 *   --------------------------              ----------------------
 *   for each hold on the victim slots:
 *     owner.revoke(va run) -> notifier ->   InvalidationPort.check():
 *       broadcast, wait for acks              drop TLB entries, ack
 *     (the importer's p2p_unmap releases
 *      its hold after the ack)
 *   Atomics.store(barSlots[slot], -1); epoch[slot]++
 *   bump the old page's BAR generation (barGen, not memGen: the page
 *     lives on, and its owner's local translation of it stays valid)
 *   map the new page: store(barSlots[slot], page)
 *   [Required: no importer DMA through the slot's bus address reaches the
 *    new page with a translation made for the old one — checked by the
 *    safety checker as a 'remapped' violation]
 *
 * The slot table itself is src/shm/phys_mem.ts's barSlots (written here,
 * main only; read by every BusDecoder with Atomics.load). Everything else
 * is main-thread state in typed arrays: free slots as a bitmap, LRU order
 * as an intrusive doubly linked list, the slot of each device page.
 *
 * Locking: `lock` serialises map/recycle (recycling awaits acks). Release
 * and dropPageNow are synchronous and need no lock (single thread, and they
 * never await).
 */
import { PeerVmaError } from '../errors.js';
import { PAGE_SIZE } from '../shm/constants.js';
import { bar2Base } from '../shm/phys_mem.js';
import type { Device } from '../devices/machine.js';
import { DriverLock } from './driver_lock.js';
import { coalesce } from './invalidate_broadcast.js';
import { TraceEvent, traceSink } from '../shm/trace_ring.js';

/** Who holds translations through slots (an importer in one process), and how to take a VA run back. */
export interface SlotOwner {
  /** Stable per (importer, process): release() finds the owner's holds by it. */
  readonly key: string;
  /** Invalidates the owner's translations of [start, end) (VA) and waits for the acks. */
  revoke(start: number, end: number): Promise<void>;
}

/** One p2p map of a range: VA page i uses slots[i] (as of epochs[i]); -1 once released. */
interface Hold {
  readonly owner: SlotOwner;
  readonly va: number;
  readonly slots: Int32Array;
  readonly epochs: Int32Array;
  live: number;
}

const NIL = -1;

/** Longest refault merged into the owner's hold that covers it (mapRunLocked). */
const MERGE_HOLE_MAX = 16;

/** The device pages of `runs` (flat [i0, i1) pairs of indexes into `pages`), in order. */
function runPages(pages: ArrayLike<number>, runs: Int32Array): Int32Array {
  let k = 0;
  for (let r = 0; r < runs.length; r += 2) k += runs[r + 1] - runs[r];
  const out = new Int32Array(k);
  k = 0;
  for (let r = 0; r < runs.length; r += 2) for (let i = runs[r]; i < runs[r + 1]; i++) out[k++] = pages[i];
  return out;
}

/** Who is mapping, where, inside which exporter mapping (the stream drop-behind follows). */
interface Requester {
  readonly owner: SlotOwner;
  readonly va: number;
  readonly scope: { readonly start: number; readonly end: number };
}

export class BarManager {
  readonly lock: DriverLock;
  /** barSlots in SAB: device page of each slot, -1 = unmapped. written by: main (here) only. */
  private readonly slots: Int32Array;
  /** barGen in SAB: BAR generation of each device page, bumped by closeSlot. written by: main (here) only. */
  private readonly barGen: Int32Array;
  readonly nSlots: number;
  /** Slot of each device page, -1 = none. guarded by: main thread. */
  private readonly pageSlot: Int32Array;
  /** Live holds on each slot. */
  private readonly users: Int32Array;
  /** Bumped when a slot closes, so a hold made before cannot release the slot's next life. */
  private readonly epoch: Int32Array;
  /** Mapped slots as a bitmap (bit set = mapped); the lowest free slot is handed out first. */
  private readonly usedBits: Uint32Array;
  /** No free slot below this one (a search hint). */
  private lowFree = 0;
  private freeCount: number;
  /** LRU list of mapped slots (head = least recently used); sentinel at index nSlots. */
  private readonly prev: Int32Array;
  private readonly next: Int32Array;
  /** Holds by owner key. */
  private readonly holds = new Map<string, Hold[]>();
  /** Slots taken from one page for another (statistics). */
  recycled = 0;
  /** Of those, slots somebody held, so importers were invalidated first. */
  revokedForReuse = 0;
  /** Statistics: holds made / pages held, releases / pages released. */
  readonly stats = { maps: 0, mappedPages: 0, unmaps: 0, unmappedPages: 0 };

  constructor(readonly dev: Device) {
    if (!dev.shm.barSlots || !dev.shm.memGen || !dev.shm.barGen) throw new PeerVmaError('ENODEV', dev.spec.name, 'has no BAR2 window or no local memory to export');
    this.slots = dev.shm.barSlots;
    this.barGen = dev.shm.barGen;
    this.nSlots = this.slots.length;
    this.pageSlot = new Int32Array(dev.shm.memGen.length).fill(NIL);
    this.users = new Int32Array(this.nSlots);
    this.epoch = new Int32Array(this.nSlots);
    this.usedBits = new Uint32Array(Math.ceil(this.nSlots / 32));
    this.freeCount = this.nSlots;
    this.prev = new Int32Array(this.nSlots + 1).fill(this.nSlots);
    this.next = new Int32Array(this.nSlots + 1).fill(this.nSlots);
    this.lock = new DriverLock(`${dev.spec.name} BAR manager`);
  }

  busOf(slot: number): number {
    return bar2Base(this.dev.shm.index) + slot * PAGE_SIZE;
  }

  slotOf(page: number): number | undefined {
    const s = this.pageSlot[page];
    return s === NIL ? undefined : s;
  }

  get mappedSlots(): number {
    return this.nSlots - this.freeCount;
  }

  /** Live holds on the slot of `page` (0 when unmapped): for tests and tools. */
  holdersOf(page: number): number {
    const s = this.pageSlot[page];
    return s === NIL ? 0 : this.users[s];
  }

  /**
   * Maps `pages` (device pages, VA page i of the range starting at `va` is
   * pages[i]) into BAR slots, recycling slots not in this call
   * (makeRoomLocked; `scope`: the exporter's mapping the range lies in, for
   * drop-behind), and records one hold of `owner` on them. Returns the bus
   * address of each page, or null when the window cannot hold them all at
   * once (ENOSPC for the caller). The one-run case of mapPageRuns.
   */
  mapPages(pages: ArrayLike<number>, owner: SlotOwner, va = 0, scope?: { start: number; end: number }): Promise<Float64Array | null> {
    return this.mapPageRuns(pages, Int32Array.of(0, pages.length), owner, va, scope);
  }

  /**
   * Maps a page request's runs, for a sparse page request (a PRI page
   * request group: the holes a revoke punched among pages the importer
   * still holds): maps the pages of `runs` only — flat [i0, i1) pairs of
   * indexes into the window of `pages.length` VA pages from `va`, ascending
   * and disjoint; pages[i] is the device page of window page i — with one
   * lock, one eviction round (the pages of every run pinned) and one pass
   * over the owner's holds, instead of one mapPages call per run. Each run
   * replaces the owner's old hold entries there; a run of at most
   * MERGE_HOLE_MAX pages fills the owner's live hold covering it, a longer
   * one gets a hold of its own (as mapPages). Returns the bus address of
   * each window page (0 outside the runs), or null when the runs do not
   * fit in the window at once (ENOSPC for the caller).
   */
  async mapPageRuns(pages: ArrayLike<number>, runs: Int32Array, owner: SlotOwner, va: number, scope?: { start: number; end: number }): Promise<Float64Array | null> {
    const asked = runPages(pages, runs);
    if (asked.length > this.nSlots) return null;
    if (!this.lock.tryLock()) await this.lock.lock();
    try {
      let missing = 0;
      for (let k = 0; k < asked.length; k++) if (this.pageSlot[asked[k]] === NIL) missing++;
      if (missing > this.freeCount && !(await this.makeRoomLocked(missing - this.freeCount, asked, scope ? { owner, va, scope } : null))) return null;
      const near = this.releaseRuns(owner.key, va, runs);
      const bus = new Float64Array(pages.length);
      for (let r = 0; r < runs.length; r += 2) this.mapRunLocked(pages, runs[r], runs[r + 1], owner, va, near, bus);
      return bus;
    } finally {
      this.lock.unlock();
    }
  }

  /**
   * Releases the owner's hold entries on the pages of `runs` (window from
   * `va`), in one pass over its holds; returns its live holds overlapping
   * the window (where mapRunLocked looks for a covering hold), null when
   * none: an array only once it holds a Hold, so mapRunLocked sees one
   * elements kind (an empty literal is a Smi-elements array, and its loop
   * over one deoptimized, 'wrong map', when the other kind came by).
   */
  private releaseRuns(ownerKey: string, va: number, runs: Int32Array): Hold[] | null {
    const l = this.holds.get(ownerKey);
    if (!l || runs.length === 0) return null;
    const w0 = va + runs[0] * PAGE_SIZE;
    const w1 = va + runs[runs.length - 1] * PAGE_SIZE;
    let near: Hold[] | null = null;
    let released = 0;
    for (const hold of l) {
      const n = hold.slots.length;
      if (hold.va >= w1 || hold.va + n * PAGE_SIZE <= w0) continue;
      for (let r = 0; r < runs.length; r += 2) {
        const i0 = Math.max(0, (va - hold.va) / PAGE_SIZE + runs[r]);
        const i1 = Math.min(n, (va - hold.va) / PAGE_SIZE + runs[r + 1]);
        released += this.releaseEntries(hold, i0, i1);
      }
      if (hold.live > 0) (near ??= []).push(hold);
    }
    if (released > 0) this.dropEmptyHolds(ownerKey, l);
    return near;
  }

  /** One run of mapPageRuns (lock held, room made): window pages [i0, i1) into slots, held by `owner`. */
  private mapRunLocked(pages: ArrayLike<number>, i0: number, i1: number, owner: SlotOwner, va: number, near: Hold[] | null, bus: Float64Array): void {
    const n = i1 - i0;
    const runVa = va + i0 * PAGE_SIZE;
    let into: Hold | null = null;
    if (near !== null && n <= MERGE_HOLE_MAX) for (const h of near) if (h.va <= runVa && runVa + n * PAGE_SIZE <= h.va + h.slots.length * PAGE_SIZE) into = h;
    const hold: Hold = into ?? { owner, va: runVa, slots: new Int32Array(n), epochs: new Int32Array(n), live: 0 };
    const at = (runVa - hold.va) / PAGE_SIZE;
    const base = bar2Base(this.dev.shm.index);
    for (let i = 0; i < n; i++) {
      const slot = this.bindSlot(pages[i0 + i]);
      hold.slots[at + i] = slot;
      hold.epochs[at + i] = this.epoch[slot];
      this.users[slot]++;
      bus[i0 + i] = base + slot * PAGE_SIZE;
    }
    hold.live += n;
    if (!into) {
      const l = this.holds.get(owner.key);
      if (l) l.push(hold);
      else this.holds.set(owner.key, [hold]);
    }
    this.stats.maps++;
    this.stats.mappedPages += n;
  }

  /** The slot of `page`, a free one taken if it has none (the caller made room), now the most recently used. */
  private bindSlot(page: number): number {
    let slot = this.pageSlot[page];
    if (slot === NIL) {
      slot = this.takeLowestFree();
      this.pageSlot[page] = slot;
      // Pairs with Atomics.load(slots, slot) in BusDecoder.decodeBarMem.
      Atomics.store(this.slots, slot, page);
    } else this.unlinkLru(slot);
    this.linkLruTail(slot);
    return slot;
  }

  /**
   * Maps the first of `pages` into free slots, as many as are free, with no
   * hold and no eviction (an exporter's map at mmap time). Returns how many
   * pages it mapped.
   */
  async premap(pages: Int32Array): Promise<number> {
    await this.lock.lock();
    try {
      const n = Math.min(pages.length, this.freeCount);
      for (let i = 0; i < n; i++) this.bindSlot(pages[i]);
      return n;
    } finally {
      this.lock.unlock();
    }
  }

  /**
   * p2p_unmap: `ownerKey` no longer uses its translations of VA [start,
   * end). Releases those pages of its holds; a slot whose last hold goes
   * stays mapped but may be reused without an invalidation. Returns the
   * pages released.
   */
  release(ownerKey: string, start: number, end: number): number {
    const released = this.releaseRange(ownerKey, start, end);
    if (released > 0) {
      this.stats.unmaps++;
      this.stats.unmappedPages += released;
    }
    return released;
  }

  private releaseRange(ownerKey: string, start: number, end: number): number {
    const l = this.holds.get(ownerKey);
    if (!l) return 0;
    let released = 0;
    let emptied = false;
    for (let h = 0; h < l.length; h++) {
      const hold = l[h];
      const n = hold.slots.length;
      if (hold.va >= end || hold.va + n * PAGE_SIZE <= start) continue;
      const i0 = Math.max(0, Math.floor((start - hold.va) / PAGE_SIZE));
      const i1 = Math.min(n, Math.ceil((end - hold.va) / PAGE_SIZE));
      released += this.releaseEntries(hold, i0, i1);
      emptied ||= hold.live === 0;
    }
    if (emptied) this.dropEmptyHolds(ownerKey, l);
    return released;
  }

  /** Releases entries [i0, i1) of `hold`; returns how many were live. */
  private releaseEntries(hold: Hold, i0: number, i1: number): number {
    let released = 0;
    for (let i = i0; i < i1; i++) {
      const s = hold.slots[i];
      if (s === NIL) continue;
      hold.slots[i] = NIL;
      hold.live--;
      released++;
      // A hold on a slot that closed since (evicted, dropped) has nothing left to release.
      if (this.epoch[s] === hold.epochs[i]) this.users[s]--;
    }
    return released;
  }

  /** Forgets the holds of `ownerKey` (its list `l`) that have no live entry left. */
  private dropEmptyHolds(ownerKey: string, l: Hold[]): void {
    // Most releases (a revoke storm's single pages) empty no hold: no new list (issue 11).
    if (!l.some((x) => x.live === 0)) return;
    const kept = l.filter((x) => x.live > 0);
    if (kept.length === 0) this.holds.delete(ownerKey);
    else this.holds.set(ownerKey, kept);
  }

  /** Takes a page out of the window: revoke its holders, unmap the slot. */
  async unmapPage(page: number): Promise<void> {
    await this.lock.lock();
    try {
      const slot = this.pageSlot[page];
      if (slot !== NIL) await this.evictLocked([slot]);
    } finally {
      this.lock.unlock();
    }
  }

  /**
   * Closes a page's slot at once, for a page being freed whose users the
   * caller has already invalidated (and waited for). The slot's close bumps
   * the BAR generation; the free bumps the page's own (memGen).
   */
  dropPageNow(page: number): void {
    const slot = this.pageSlot[page];
    if (slot === NIL) return;
    this.closeSlot(slot);
  }

  /**
   * Frees `short` slots for a call mapping `pinned` (victim choice: the file
   * comment, "Recycling policy"): unheld slots first, most recently mapped
   * first (closed at once, no invalidation); then held ones (heldVictims),
   * revoked in one batch, one range per run of a hold's VA pages. False
   * when not enough slots can be freed.
   */
  private async makeRoomLocked(short: number, pinned: ArrayLike<number>, req: Requester | null): Promise<boolean> {
    const pin = this.pinOf(pinned);
    short = this.closeUnheld(short, pin);
    if (short === 0) return true;
    const victims = this.heldVictims(short, pin, req);
    if (victims.length < short) return false;
    await this.evictCounted(victims, pinned);
    return true;
  }

  /** Marks the slots of the pages being mapped: no victim among them. */
  private pinOf(pinned: ArrayLike<number>): Uint8Array {
    const pin = new Uint8Array(this.nSlots);
    for (let i = 0; i < pinned.length; i++) {
      const s = this.pageSlot[pinned[i]];
      if (s !== NIL) pin[s] = 1;
    }
    return pin;
  }

  /** Closes up to `short` slots nobody holds (no invalidation), most recently mapped first; returns how many are still short. */
  private closeUnheld(short: number, pin: Uint8Array): number {
    const s0 = this.nSlots;
    for (let s = this.prev[s0]; s !== s0 && short > 0; ) {
      const pv = this.prev[s];
      if (!pin[s] && this.users[s] === 0) {
        this.closeSlot(s);
        this.recycled++;
        short--;
      }
      s = pv;
    }
    return short;
  }

  /** Evicts held victims (revoking their holders first), counted and traced. */
  private async evictCounted(victims: number[], pinned: ArrayLike<number>): Promise<void> {
    if (victims.length === 0) return;
    const t0 = performance.now();
    await this.evictLocked(victims);
    traceSink.w?.emit(TraceEvent.SlotRecycle, performance.timeOrigin + t0, performance.now() - t0, this.dev.shm.index, victims.length, pinned[0] ?? 0);
    this.recycled += victims.length;
    this.revokedForReuse += victims.length;
  }

  /**
   * `short` held slots to take back (fewer when the window has not that
   * many outside `pin`), in two passes:
   *  1. drop-behind along the requester's stream: slots the requester
   *     holds in `scope` (the exporter's mapping it faults in), nearest
   *     behind `va` first, cyclically (the pages it passed most recently
   *     are the ones a cyclic stream needs last: Belady's choice), except
   *     its hold just behind `va` (the window it is still streaming
   *     through while it prefetched this one);
   *  2. least recently mapped slots, of anyone.
   * A stream thus loses runs of adjacent pages just behind it: one
   * invalidation range each.
   */
  private heldVictims(short: number, pin: Uint8Array, req: Requester | null): number[] {
    const chosen = pin.slice();
    const victims: number[] = [];
    const mine = req ? this.holds.get(req.owner.key) : undefined;
    if (req && mine) {
      const { va, scope } = req;
      const span = scope.end - scope.start;
      const cand: number[] = [];
      for (const h of mine) {
        const n = h.slots.length;
        // The hold containing the page just behind the request: the window the stream is in.
        if (h.va < va && va <= h.va + n * PAGE_SIZE) continue;
        for (let i = 0; i < n; i++) {
          const s = h.slots[i];
          const v = h.va + i * PAGE_SIZE;
          if (s === NIL || chosen[s] || this.epoch[s] !== h.epochs[i] || v < scope.start || v >= scope.end) continue;
          // Distance behind va, cyclically over the scope; a page at va itself is furthest.
          const d = (va - v + span - PAGE_SIZE) % span;
          cand.push((d / PAGE_SIZE) * (this.nSlots + 1) + s);
        }
      }
      // Sort keys: distance (in pages) times (nSlots + 1) plus the slot: numeric, exact below 2^53.
      cand.sort((x, y) => x - y);
      const m = this.nSlots + 1;
      for (let k = 0; k < cand.length && victims.length < short; k++) {
        // `| 0`: a slot as a small integer. The key arithmetic is float (the key can pass 2^31), and a
        // float slot reaching closeSlot turned the `lowFree` field into a double: a new hidden class
        // for every BarManager, and each function optimized for the old one deoptimized ('wrong map').
        const s = (cand[k] % m) | 0;
        if (!chosen[s]) {
          chosen[s] = 1;
          victims.push(s);
        }
      }
    }
    const s0 = this.nSlots;
    for (let s = this.next[s0]; s !== s0 && victims.length < short; s = this.next[s]) {
      if (chosen[s] || this.users[s] === 0) continue;
      chosen[s] = 1;
      victims.push(s);
    }
    return victims;
  }

  /**
   * The lowest free slot, marked used: a run of pages mapped in one call
   * gets ascending slots, so contiguous pages decode as one DMA run. The
   * hint makes a window filling up from slot 0 cost O(1) per slot.
   */
  private takeLowestFree(): number {
    const bits = this.usedBits;
    for (let w = this.lowFree >>> 5; w < bits.length; w++) {
      const used = bits[w];
      if (used === 0xffffffff) continue;
      const b = 31 - Math.clz32(~used & (used + 1)); // lowest clear bit
      const s = (w << 5) + b;
      if (s >= this.nSlots) break;
      bits[w] = used | (1 << b);
      this.freeCount--;
      this.lowFree = s + 1;
      return s;
    }
    throw new Error(`${this.dev.spec.name} BAR manager: no free slot (caller checked freeCount)`);
  }

  /**
   * Evicts slots: one revoke per run of adjacent VA pages of one owner
   * (runs of its holds that touch are merged: a stream's evicted tail is one
   * mmu-notifier range, whatever faults mapped it), then the slots close.
   */
  private async evictLocked(victims: readonly number[]): Promise<void> {
    const mark = new Uint8Array(this.nSlots);
    for (const s of victims) mark[s] = 1;
    const work: Promise<void>[] = [];
    for (const l of this.holds.values()) {
      const runs: { start: number; end: number }[] = []; // of this owner
      for (const hold of l) {
        const n = hold.slots.length;
        for (let i = 0; i < n; ) {
          const s = hold.slots[i];
          if (s === NIL || !mark[s] || this.epoch[s] !== hold.epochs[i]) {
            i++;
            continue;
          }
          let j = i + 1;
          while (j < n && hold.slots[j] !== NIL && mark[hold.slots[j]] && this.epoch[hold.slots[j]] === hold.epochs[j]) j++;
          runs.push({ start: hold.va + i * PAGE_SIZE, end: hold.va + j * PAGE_SIZE });
          i = j;
        }
      }
      // Touching runs merge: one notifier range per evicted run of the owner's mapping.
      for (const r of coalesce(runs, Infinity)) work.push(l[0].owner.revoke(r.start, r.end));
    }
    await Promise.all(work);
    // Only after every ack: the bus addresses stop decoding to the pages.
    for (const s of victims) {
      if (Atomics.load(this.slots, s) === NIL) continue; // dropped meanwhile
      this.closeSlot(s);
    }
  }

  /**
   * Unmaps a slot. The page's BAR generation moves on, so a translation made
   * through the slot can no longer pass the checker, whatever the slot maps
   * next (the same page included). Only barGen: the page itself lives on,
   * and its owner's local translation of it (own device-private page,
   * checked against memGen) stays valid.
   */
  private closeSlot(slot: number): void {
    const page = Atomics.load(this.slots, slot);
    Atomics.add(this.barGen, page, 1);
    Atomics.store(this.slots, slot, NIL);
    this.pageSlot[page] = NIL;
    this.users[slot] = 0;
    this.epoch[slot]++;
    this.unlinkLru(slot);
    this.usedBits[slot >>> 5] &= ~(1 << (slot & 31));
    this.freeCount++;
    if (slot < this.lowFree) this.lowFree = slot;
  }

  private unlinkLru(s: number): void {
    const p = this.prev[s];
    const n = this.next[s];
    this.next[p] = n;
    this.prev[n] = p;
  }

  private linkLruTail(s: number): void {
    const head = this.nSlots;
    const last = this.prev[head];
    this.next[last] = s;
    this.prev[s] = last;
    this.next[s] = head;
    this.prev[head] = s;
  }
}
