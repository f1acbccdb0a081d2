/**
 * HMM device memory (RFC patch 4/5): a device's local memory handed out as
 * device-private pages that anonymous memory can migrate to.
 *
 * Mirrors struct dev_pagemap with type MEMORY_DEVICE_PRIVATE and its ops:
 *   dev_pagemap_ops.migrate_to_ram()  -> DevMem.migrateToRam (CPU fault)
 *   dev_pagemap_ops.page_free()       -> DevMem.freePageList (runs at once)
 *   pgmap->owner                      -> DevMem itself (the dev_private_owner
 *                                        hmmRangeFault compares against)
 * and the RFC's devmem p2p callback: "return the number of pages mapped,
 * 0 to refuse" -> DevMem.p2pMap, which maps the page into the owner's BAR
 * window (BarManager) when the topology and IOMMU allow the pair.
 *
 * Invariants:
 * - `rmap` knows, for every private page in use, the (mm, va) that maps it
 *   (no fork: one mapping per page);
 * - a freed page has its generation bumped and is poisoned (PageAllocator);
 * - peers reach a private page only through a BAR slot the owner granted;
 *   recycling that slot revokes the peer (BarManager).
 */
import { PAGE_SIZE } from '../shm/constants.js';
import type { Errno } from '../errors.js';
import type { Device } from '../devices/machine.js';
import type { PageAllocator } from '../shm/page_alloc.js';
import type { DevMemRef, DeviceRef, KernelCore, MmRef, OwnerFlush } from './kernel_types.js';
import type { Mm } from './mm.js';
import type { SlotOwner } from './bar_manager.js';
import { MmSlotOwner } from './mm_slot_owner.js';

/** migrate_to_ram's core (migrate.ts migrateToRamLocked), given by the kernel: DevMem sits below migrate. */
export type MigrateToRam = (mm: Mm, start: number, end: number, only: DevMem) => Promise<number | Errno>;

export class DevMem implements DevMemRef {
  readonly owner: DeviceRef;
  readonly bytes: Uint8Array;
  /** memGen: bumped when a page is freed; the owner's local translations carry it (peers' carry barGen). */
  readonly gen: Int32Array;
  /** page -> the one mapping of it. guarded by: the mm lock of that mapping. */
  readonly rmap = new Map<number, { mm: Mm; va: number }>();
  /**
   * Set by the owner's driver: flushes its own device TLB for a range during
   * migrations it caused (its invalidate callback skips those, as
   * dmirror_interval_invalidate skips MMU_NOTIFY_MIGRATE with owner == itself).
   */
  ownerFlush: OwnerFlush | null = null;
  /**
   * Set by the owner's driver: installs the owner's translations of VA
   * pages `vpns` of `mm` just migrated into this memory
   * (dmirror_migrate_finalize_and_map; src/drivers/migrate_map.ts).
   */
  ownerMap: ((mm: Mm, vpns: readonly number[]) => Promise<number>) | null = null;
  /** Owner's answer to peers (the devmem p2p callback may refuse: 0 pages). */
  allowPeers = true;
  /** p2p unmaps received (statistics). */
  unmapCalls = 0;
  /** One slot owner per (importer, process). */
  private readonly owners = new Map<string, SlotOwner>();

  constructor(
    readonly kernel: KernelCore,
    readonly dev: Device,
    private readonly alloc: PageAllocator,
    private readonly migrate: MigrateToRam,
  ) {
    this.owner = { name: dev.spec.name, index: dev.shm.index };
    this.bytes = dev.shm.mem!;
    this.gen = dev.shm.memGen!;
    // memremap_pages(): the device memory is there before anything migrates into it (PageAllocator.populate).
    alloc.populate();
  }

  get freePages(): number {
    return this.alloc.freePages;
  }

  /**
   * `count` private pages for a migration (dmirror_devmem_alloc_page, in
   * as few runs as the allocator can), not zeroed: the migration copies the
   * source page into each, or clears it when there is none, as
   * dmirror_migrate_alloc_and_copy does. Caller checked freePages.
   */
  allocPages(count: number): Int32Array {
    return this.alloc.allocPageList(count);
  }

  /** page_free() of many pages: each run of consecutive pages is poisoned and merged back at once. */
  freePageList(pages: ArrayLike<number>): void {
    // Their peers were invalidated with the mapping (the caller ran the
    // invalidation and waited for the acks): the slots just close.
    const bar = this.kernel.barIfAny(this.owner.name);
    for (let i = 0; i < pages.length; i++) {
      this.rmap.delete(pages[i]);
      bar?.dropPageNow(pages[i]);
    }
    this.alloc.freePageList(pages);
  }

  /** migrate_to_ram() on a CPU (or non-P2P peer) fault. Caller holds mm.lock. */
  migrateToRam(mm: Mm, va: number): Promise<0 | Errno> {
    return this.migrate(mm, va, va + PAGE_SIZE, this).then((r) => (typeof r === 'number' ? 0 : r));
  }

  /**
   * The RFC's devmem p2p callback: map private `page` for peer `importer`.
   * Returns the peer (bus) address and generation, or null to refuse (the
   * caller then migrates the page back to system RAM).
   */
  async p2pMap(page: number, importer: DeviceRef, mm: Mm, va: number): Promise<{ bus: number; gen: number } | null> {
    const r = await this.p2pMapRange(Int32Array.of(page), importer, mm, va);
    return r ? { bus: r.bus[0], gen: r.gens[0] } : null;
  }

  /**
   * The devmem p2p callback for a run of private pages: VA page i of the
   * run starting at `va` is pages[i]. One BAR mapping and one hold for the
   * whole run; null to refuse.
   */
  async p2pMapRange(pages: Int32Array, importer: DeviceRef, mm: MmRef, va: number): Promise<{ bus: Float64Array; gens: Int32Array } | null> {
    if (!this.allowPeers) return null;
    if (!this.kernel.p2pAllowed(this.owner, importer).ok) return null;
    const bar = this.kernel.barIfAny(this.owner.name);
    if (!bar) return null;
    const bus = await bar.mapPages(pages, this.slotOwner(importer, mm), va);
    if (!bus) return null;
    // The BAR generation: the peer's translation goes through a slot (the owner's own local ones carry this.gen).
    return { bus, gens: loadGens(this.dev.shm.barGen!, pages) };
  }

  /**
   * The matching unmap: `importer` dropped its peer translations of
   * [start, end) of `mm` (after the invalidation's ack), so its hold on
   * those BAR slots goes; a slot nobody holds is reused without an
   * invalidation.
   */
  p2pUnmap(importer: DeviceRef, mm: MmRef, start: number, end: number): void {
    this.unmapCalls++;
    this.kernel.barIfAny(this.owner.name)?.release(`${importer.name}@${mm.name}/devmem`, start, end);
  }

  private slotOwner(importer: DeviceRef, mm: MmRef): SlotOwner {
    const key = `${importer.name}@${mm.name}/devmem`;
    let o = this.owners.get(key);
    if (!o) {
      o = new MmSlotOwner(key, mm, this);
      this.owners.set(key, o);
    }
    return o;
  }
}

/**
 * The generation of each of `pages` (a leaf of its own: p2pMapRange, called
 * once per page request, then stays unoptimized, and V8 compiles this small
 * loop instead of the whole mapping path with the BAR manager inlined).
 */
function loadGens(gen: Int32Array, pages: Int32Array): Int32Array {
  const gens = new Int32Array(pages.length);
  for (let i = 0; i < pages.length; i++) gens[i] = Atomics.load(gen, pages[i]);
  return gens;
}
