/**
 * Bus-address decode: bus address -> (owner, region, backing bytes).
 *
 * Every DMA, from any device, and every access the kernel side makes "over
 * the bus" goes through one decoder, so the two sides cannot disagree about
 * where an address lands. BAR2 windows are decoded through the exporter's
 * BAR slot table (slot -> device page), which is what makes BAR space
 * management possible (DESIGN.md section 3).
 *
 * Invariants:
 * - a returned run never crosses a region boundary nor an unmapped BAR slot;
 * - adjacent BAR slots that map adjacent device pages are merged into one
 *   run (copy runs, not pages);
 * - decode never throws for a bad address: it returns a BusFault the caller
 *   reports with its own name.
 */
import { PAGE_SHIFT, PAGE_SIZE } from './constants.js';
import { bar2Base } from './phys_mem.js';
import type { BusRegionDesc, DeviceShm, MachineShm } from './phys_mem.js';

export type RunTarget = 'ram' | 'devmem' | 'regs';

/** A contiguous piece of backing memory that a bus range decodes to. */
export interface BusRun {
  readonly target: RunTarget;
  /** Device index owning the memory, -1 for system RAM. */
  readonly owner: number;
  /** Backing bytes (RAM or the owner's local memory); for 'regs', the owner's register file bytes. */
  readonly bytes: Uint8Array;
  /** Byte offset of the run inside `bytes`. */
  readonly offset: number;
  /** Run length, 1..len asked. */
  readonly len: number;
  /** Page generation table of `bytes` (null for registers): ramGen, or a device's barGen for BAR2 runs. */
  readonly gen: Int32Array | null;
}

export interface BusFault {
  readonly fault: string;
}

export function isBusFault(r: BusRun | BusFault): r is BusFault {
  return (r as BusFault).fault !== undefined;
}

export function hex(addr: number): string {
  return '0x' + addr.toString(16);
}

export class BusDecoder {
  private readonly regions: readonly BusRegionDesc[];
  private readonly regBytes: Uint8Array[];

  constructor(private readonly shm: MachineShm) {
    this.regions = shm.desc.regions;
    this.regBytes = shm.devices.map((d) => new Uint8Array(d.regs.buffer));
  }

  /** The region the last lookup found: a DMA gather decodes page after page of one region. */
  private lastRegion: BusRegionDesc | undefined;

  /** Region containing `addr`, or undefined. The last region found, else a binary search over the sorted map. */
  region(addr: number): BusRegionDesc | undefined {
    const last = this.lastRegion;
    if (last !== undefined && addr >= last.base && addr < last.base + last.size) return last;
    let lo = 0;
    let hi = this.regions.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const r = this.regions[mid];
      if (addr < r.base) hi = mid - 1;
      else if (addr >= r.base + r.size) lo = mid + 1;
      else return (this.lastRegion = r);
    }
    return undefined;
  }

  /** Decodes the first contiguous run of [addr, addr + len). */
  decode(addr: number, len: number): BusRun | BusFault {
    return this.decodeTo(addr, len, null);
  }

  /**
   * decode() into `out` instead of a new object (the DMA engine's per-run
   * path allocates nothing): the result is `out` itself, valid until its
   * next use. A fault is still a new BusFault.
   */
  decodeTo(addr: number, len: number, out: ScratchRun | null): BusRun | BusFault {
    const r = this.region(addr);
    if (!r) return { fault: `bus address ${hex(addr)} decodes to no region` };
    const off = addr - r.base;
    const avail = Math.min(len, r.size - off);
    switch (r.kind) {
      case 'ram':
        return fillRun(out, 'ram', -1, this.shm.ram, off, avail, this.shm.ramGen);
      case 'bar-regs':
        return fillRun(out, 'regs', r.owner, this.regBytes[r.owner], off, avail, null);
      case 'bar-mem':
        return this.decodeBarMem(this.shm.devices[r.owner], addr, off, avail, out);
    }
  }

  /**
   * The run after `out` in the same BAR2 window: `out` holds a 'devmem'
   * run decodeTo() made (only BAR2 windows decode to device memory), and
   * [addr, +len) goes on from where it ended. Fills `out` with the next
   * slot's page (and the slots after it that map the pages after it), as
   * decodeTo() would, without the region lookup; false, `out` untouched,
   * when addr leaves the window or its slot maps nothing (decodeTo() then
   * says why). A DMA gather over scattered backing decodes page after page
   * of one window (workers/runtime/dma_engine.ts).
   */
  decodeBarNext(out: ScratchRun, addr: number, len: number): boolean {
    const dev = this.shm.devices[out.owner];
    const off = addr - bar2Base(dev.index);
    const slots = dev.barSlots!;
    const first = off >>> PAGE_SHIFT;
    if (off < 0 || first >= slots.length) return false;
    const backing = barSlotBacking(slots, first);
    if (backing < 0) return false;
    const inPage = off & (PAGE_SIZE - 1);
    out.offset = backing + inPage;
    out.len = slotRunLen(slots, first, backing, inPage, len);
    return true;
  }

  private decodeBarMem(dev: DeviceShm, addr: number, off: number, avail: number, out: ScratchRun | null): BusRun | BusFault {
    const slots = dev.barSlots!;
    const slot = off >>> PAGE_SHIFT;
    const backing = barSlotBacking(slots, slot);
    if (backing < 0) return { fault: `bus address ${hex(addr)} is in BAR2 slot ${slot} of ${dev.name}, which maps no device page` };
    const inPage = off & (PAGE_SIZE - 1);
    const len = slotRunLen(slots, slot, backing, inPage, avail);
    // The BAR generation, not memGen: a translation through a slot dies when the slot closes (src/kernel/bar_manager.ts).
    return fillRun(out, 'devmem', dev.index, dev.mem!, backing + inPage, len, dev.barGen);
  }
}

/**
 * The one reading of a BAR2 slot word: the byte offset, in the owner's
 * device memory, of the page the slot maps, or -1 when it maps none. Every
 * BAR2 decode (this file's, and the DMA engine's one-loop gather over a
 * window) reads slots through it, so a change of the slot encoding cannot
 * split them.
 */
export function barSlotBacking(slots: Int32Array, slot: number): number {
  // Pairs with Atomics.store(this.slots, slot, page) in BarManager.bindSlot.
  const page = Atomics.load(slots, slot);
  return page < 0 ? -1 : page * PAGE_SIZE;
}

/**
 * Bytes of a BAR2 run from `inPage` into slot `first` (whose page is at
 * byte `backing`), up to `avail`: the following slots join while they map
 * the following device pages.
 */
function slotRunLen(slots: Int32Array, first: number, backing: number, inPage: number, avail: number): number {
  let len = Math.min(avail, PAGE_SIZE - inPage);
  for (let slot = first + 1; len < avail && slot < slots.length && barSlotBacking(slots, slot) === backing + (slot - first) * PAGE_SIZE; slot++) len = Math.min(avail, len + PAGE_SIZE);
  return len;
}

/** A BusRun that decodeTo() may overwrite. */
export type ScratchRun = { -readonly [K in keyof BusRun]: BusRun[K] };

export function scratchRun(): ScratchRun {
  return { target: 'ram', owner: -1, bytes: new Uint8Array(0), offset: 0, len: 0, gen: null };
}

function fillRun(out: ScratchRun | null, target: RunTarget, owner: number, bytes: Uint8Array, offset: number, len: number, gen: Int32Array | null): BusRun {
  if (out === null) return { target, owner, bytes, offset, len, gen };
  out.target = target;
  out.owner = owner;
  out.bytes = bytes;
  out.offset = offset;
  out.len = len;
  out.gen = gen;
  return out;
}

/**
 * An Int32Array view of a ring or record at a bus address. The whole range
 * must decode to one contiguous run (rings are allocated as one extent).
 */
export function busWordView(bus: BusDecoder, addr: number, bytes: number, what: string): Int32Array {
  const r = bus.decode(addr, bytes);
  if (isBusFault(r)) throw new RangeError(`${what}: ${r.fault}`);
  if (r.len !== bytes) throw new RangeError(`${what}: [${hex(addr)}, +${bytes}) is not contiguous in memory (first run ${r.len} bytes)`);
  if ((r.bytes.byteOffset + r.offset) % 4 !== 0) throw new RangeError(`${what}: ${hex(addr)} is not 4-byte aligned`);
  return new Int32Array(r.bytes.buffer, r.bytes.byteOffset + r.offset, bytes / 4);
}
