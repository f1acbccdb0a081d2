/**
 * BAR space management: a device's BAR2 window is smaller than its memory,
 * so the driver maps device pages into BAR slots on demand and recycles
 * the least recently used slot under pressure (DESIGN.md section 3; the
 * RFC leaves this to drivers: "BAR space management lives in the driver").
 *
 * Recycling a slot (the only way a bus address changes meaning):
 *
 *   main (BarManager.recycle)               importer device worker
 *   -------------------------               ----------------------
 *   for each user of the slot:
 *     mm.revokeRange(va)  -> notifier ->    InvalidationPort.check():
 *       broadcast, wait for acks              drop TLB entries, ack
 *   Atomics.store(barSlots[slot], -1)
 *   bump the old page's generation
 *   map the new page: store(barSlots[slot], page)
 *   [Required: no importer DMA through the slot's bus address reaches the
 *    new page with a translation made for the old one — checked by the
 *    safety checker as a 'remapped' violation]
 *
 * The slot table itself is src/shm/phys_mem.ts's barSlots (written here,
 * main only; read by every BusDecoder with Atomics.load).
 *
 * Locking: `lock` serialises map/recycle (recycling awaits acks).
 */
import { PeerVmaError } from '../errors.js';
import { PAGE_SIZE } from '../shm/constants.js';
import { bar2Base } from '../shm/phys_mem.js';
import type { Device } from '../devices/machine.js';
import { DriverLock } from './driver_lock.js';
import { traceDev, TraceEvent, traceSink } from '../shm/trace_ring.js';

/** Who holds a translation through a slot, and how to take it back. */
export interface SlotUser {
  readonly key: string;
  revoke(): Promise<void>;
  /**
   * Optional batching: users that share `span` (one process mapping) and
   * hold adjacent pages (`va`) are revoked with one span call over the run
   * instead of one call per page.
   */
  readonly va?: number;
  readonly span?: (start: number, end: number) => Promise<void>;
}

interface SlotInfo {
  page: number;
  lastUse: number;
  readonly users: Map<string, SlotUser>;
}

export class BarManager {
  readonly lock: DriverLock;
  private readonly slots: Int32Array;
  readonly nSlots: number;
  /** guarded by: lock. */
  private readonly info: (SlotInfo | null)[];
  private readonly slotOfPage = new Map<number, number>();
  private tick = 0;
  /** Slots recycled under pressure (statistics). */
  recycled = 0;

  constructor(readonly dev: Device) {
    if (!dev.shm.barSlots || !dev.shm.memGen) throw new PeerVmaError('ENODEV', dev.spec.name, 'has no BAR2 window or no local memory to export');
    this.slots = dev.shm.barSlots;
    this.nSlots = this.slots.length;
    this.info = new Array<SlotInfo | null>(this.nSlots).fill(null);
    this.lock = new DriverLock(`${dev.spec.name} BAR manager`);
  }

  busOf(slot: number): number {
    return bar2Base(this.dev.shm.index) + slot * PAGE_SIZE;
  }

  slotOf(page: number): number | undefined {
    return this.slotOfPage.get(page);
  }

  get mappedSlots(): number {
    return this.slotOfPage.size;
  }

  /**
   * Maps `pages` (device page indexes) into BAR slots, recycling LRU slots
   * not in this call. Returns the bus address of each page, or null with
   * ENOSPC when the window cannot hold them all at once.
   */
  async mapPages(pages: readonly number[], user: (page: number) => SlotUser): Promise<number[] | null> {
    if (pages.length > this.nSlots) return null;
    await this.lock.lock();
    try {
      const pinned = new Set(pages);
      // Recycle every slot this call needs at once: the evictions' revokes
      // run concurrently, so the importers' invalidations go out as one
      // batch (DeviceInvalidator merges them), not one round trip per page.
      const missing = pages.filter((p) => !this.slotOfPage.has(p)).length;
      const short = missing - this.info.filter((i) => i === null).length;
      if (short > 0) {
        const victims = this.lruVictims(short, pinned);
        if (victims.length < short) return null;
        const t0 = performance.now();
        await this.evictManyLocked(victims);
        this.recycled += victims.length;
        traceSink.w?.emit(TraceEvent.SlotRecycle, performance.timeOrigin + t0, performance.now() - t0, this.dev.shm.index, victims.length, pages[0] ?? 0);
      }
      const out: number[] = [];
      for (const page of pages) {
        let slot = this.slotOfPage.get(page);
        if (slot === undefined) {
          slot = this.info.indexOf(null);
          this.info[slot] = { page, lastUse: 0, users: new Map() };
          this.slotOfPage.set(page, slot);
          // Pairs with Atomics.load(slots, slot) in BusDecoder.decodeBarMem.
          Atomics.store(this.slots, slot, page);
        }
        const inf = this.info[slot]!;
        inf.lastUse = ++this.tick;
        const u = user(page);
        inf.users.set(u.key, u);
        out.push(this.busOf(slot));
      }
      return out;
    } finally {
      this.lock.unlock();
    }
  }

  /** Takes a page out of the window: revoke its users, unmap the slot. */
  async unmapPage(page: number): Promise<void> {
    await this.lock.lock();
    try {
      const slot = this.slotOfPage.get(page);
      if (slot !== undefined) await this.evictManyLocked([slot]);
    } finally {
      this.lock.unlock();
    }
  }

  /**
   * Closes a page's slot at once, for a page being freed whose users the
   * caller has already invalidated (and waited for). No generation bump here:
   * the free bumps it.
   */
  dropPageNow(page: number): void {
    const slot = this.slotOfPage.get(page);
    if (slot === undefined) return;
    Atomics.store(this.slots, slot, -1);
    this.slotOfPage.delete(page);
    this.info[slot] = null;
  }

  /** The `n` least recently used mapped slots whose pages are not pinned. */
  private lruVictims(n: number, pinned: Set<number>): number[] {
    const cands: number[] = [];
    for (let s = 0; s < this.nSlots; s++) {
      const inf = this.info[s];
      if (inf && !pinned.has(inf.page)) cands.push(s);
    }
    return cands.sort((a, b) => this.info[a]!.lastUse - this.info[b]!.lastUse).slice(0, n);
  }

  /** Evicts several slots: one revoke per run of adjacent pages of one mapping, then the slots close. */
  private async evictManyLocked(slots: readonly number[]): Promise<void> {
    const single: SlotUser[] = [];
    const spans = new Map<SlotUser['span'], number[]>();
    for (const slot of slots) {
      for (const u of this.info[slot]!.users.values()) {
        if (u.span && u.va !== undefined) {
          const l = spans.get(u.span) ?? [];
          l.push(u.va);
          spans.set(u.span, l);
        } else single.push(u);
      }
    }
    const work: Promise<void>[] = single.map((u) => u.revoke());
    for (const [span, vas] of spans) {
      vas.sort((a, b) => a - b);
      let start = vas[0];
      let end = start + PAGE_SIZE;
      for (const va of vas.slice(1)) {
        if (va === end) end += PAGE_SIZE;
        else {
          work.push(span!(start, end));
          start = va;
          end = va + PAGE_SIZE;
        }
      }
      work.push(span!(start, end));
    }
    await Promise.all(work);
    // Only after every ack: the bus addresses stop decoding to the pages.
    for (const slot of slots) this.closeSlotLocked(slot);
  }

  private closeSlotLocked(slot: number): void {
    const inf = this.info[slot]!;
    Atomics.store(this.slots, slot, -1);
    Atomics.add(this.dev.shm.memGen!, inf.page, 1);
    this.slotOfPage.delete(inf.page);
    this.info[slot] = null;
  }

}
