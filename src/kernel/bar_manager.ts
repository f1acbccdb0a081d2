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
import { DriverLock } from './mmu_notifier.js';

/** Who holds a translation through a slot, and how to take it back. */
export interface SlotUser {
  readonly key: string;
  revoke(): Promise<void>;
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
      const out: number[] = [];
      for (const page of pages) {
        let slot = this.slotOfPage.get(page);
        if (slot === undefined) {
          slot = this.info.indexOf(null);
          if (slot < 0) slot = await this.recycleLocked(pinned);
          if (slot < 0) return null;
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
      if (slot !== undefined) await this.evictLocked(slot);
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

  private async recycleLocked(pinned: Set<number>): Promise<number> {
    let best = -1;
    for (let s = 0; s < this.nSlots; s++) {
      const inf = this.info[s];
      if (inf && !pinned.has(inf.page) && (best < 0 || inf.lastUse < this.info[best]!.lastUse)) best = s;
    }
    if (best < 0) return -1;
    await this.evictLocked(best);
    this.recycled++;
    return best;
  }

  private async evictLocked(slot: number): Promise<void> {
    const inf = this.info[slot]!;
    await Promise.all([...inf.users.values()].map((u) => u.revoke()));
    // Only after every ack: the bus address stops decoding to the page.
    Atomics.store(this.slots, slot, -1);
    Atomics.add(this.dev.shm.memGen!, inf.page, 1);
    this.slotOfPage.delete(inf.page);
    this.info[slot] = null;
  }
}
