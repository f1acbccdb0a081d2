/**
 * An emulated process address space: VMAs, the CPU page table, CPU loads
 * and stores, and every operation that changes or removes a translation.
 *
 * Mirrors mm/mmap.c (do_mmap, do_munmap / __do_munmap), mm/mprotect.c
 * (mprotect_fixup), mm/madvise.c (madvise_dontneed_single_vma), mm/memory.c
 * (handle_mm_fault: do_anonymous_page with the zero page on read,
 * wp_page_copy off the zero page on write, do_swap_page ->
 * dev_pagemap_ops.migrate_to_ram for device-private entries), and
 * kernel/exit.c -> exit_mmap() (mmu_notifier_release).
 *
 * Every change to a translation runs one invalidation:
 *
 *   range = {start, end, event}           event: unmap | clear | protection
 *   invalidateRangeStart(range)                  | migrate | release
 *   change the PTEs
 *   await invalidateRangeEnd(range)       <- waits for every importer ack
 *   free the old pages (generation bump + poison)
 *   [Required: a page is freed only after every importer acked]
 *
 * Lifetime: created by Kernel.createMm; exit() runs the release
 * invalidation, frees everything and makes the Mm unusable (ESRCH-like
 * EINVAL on any further call).
 * Locking: `lock` is mmap_lock (one async mutex; no read/write split).
 * Public methods take it; *Locked helpers assert it.
 */
import { PeerVmaError, type Errno } from '../errors.js';
import { PAGE_SIZE } from '../shm/constants.js';
import { DriverLock } from './driver_lock.js';
import { makeRange, MmuNotifierSubscriptions, type MmuNotifyEvent } from './mmu_notifier.js';
import type { DevMemRef, KernelCore, MmRef, VmOps } from './kernel_types.js';
import { PROT_NONE, PROT_READ, PROT_WRITE, ramPte, Vma, zeroPte, type Pte, type VmaKind } from './vma.js';

/** Where mmap starts placing mappings; one guard page is left between mappings. */
export const MMAP_BASE = 0x7f00_0000_0000;
/** End of user address space (TASK_SIZE), for whole-mm notifiers. */
export const TASK_SIZE = 0x8000_0000_0000;

export interface MmapArgs {
  readonly length: number;
  readonly prot: number;
  readonly kind?: VmaKind;
  /** For kind 'device': the exporting driver's vm_ops. */
  readonly vmOps?: VmOps;
  readonly pgoff?: number;
  readonly priv?: unknown;
}

let nextMmId = 1;

export function pageAlign(n: number): number {
  return Math.ceil(n / PAGE_SIZE) * PAGE_SIZE;
}

export class Mm implements MmRef {
  readonly id = nextMmId++;
  readonly name = `mm ${this.id}`;
  readonly notifiers: MmuNotifierSubscriptions;
  /** mmap_lock. */
  readonly lock = new DriverLock(`${this.name} mmap_lock`);
  /** guarded by: lock. Sorted, non-overlapping. */
  private vmas: Vma[] = [];
  /** CPU page table, virtual page number -> PTE. guarded by: lock. */
  readonly pt = new Map<number, Pte>();
  private nextAddr = MMAP_BASE;
  private dead = false;

  constructor(readonly kernel: KernelCore) {
    this.notifiers = new MmuNotifierSubscriptions(this.name, (m) => kernel.log.push(m));
  }

  get vmaList(): readonly Vma[] {
    return this.vmas;
  }

  /** find_vma() restricted to a containing VMA (vma_lookup). Lock held. */
  findVma(addr: number): Vma | undefined {
    return this.vmas.find((v) => v.contains(addr));
  }

  /** Runs fn under mmap_lock. */
  async locked<T>(fn: () => Promise<T> | T): Promise<T> {
    this.checkAlive();
    await this.lock.lock();
    try {
      return await fn();
    } finally {
      this.lock.unlock();
    }
  }

  /** do_mmap(): returns the address of the new mapping. */
  async mmap(a: MmapArgs): Promise<number> {
    const kind = a.kind ?? 'anon-private';
    if (a.length <= 0) throw new PeerVmaError('EINVAL', this.name, `mmap of ${a.length} bytes`);
    if ((kind === 'device') !== (a.vmOps !== undefined)) throw new PeerVmaError('EINVAL', this.name, `mmap kind '${kind}' ${kind === 'device' ? 'needs' : 'takes no'} vm_ops`);
    return this.locked(() => {
      const len = pageAlign(a.length);
      const start = this.nextAddr;
      this.nextAddr += len + PAGE_SIZE;
      const vma = new Vma(this, start, start + len, a.prot, kind, a.vmOps ?? null, a.pgoff ?? 0, a.priv);
      this.vmas.push(vma);
      this.vmas.sort((x, y) => x.start - y.start);
      return start;
    });
  }

  /** __do_munmap(). Device-special VMAs are unmapped whole (EINVAL for a part). */
  async munmap(addr: number, length: number): Promise<void> {
    const end = addr + pageAlign(length);
    await this.locked(async () => {
      this.checkRange(addr, end);
      const closing: Vma[] = [];
      for (const v of this.vmas) {
        if (v.kind === 'device' && v.start < end && addr < v.end && (addr > v.start || end < v.end)) {
          throw new PeerVmaError('EINVAL', v.toString(), 'a device-special mapping is unmapped whole');
        }
      }
      const freed: Pte[] = [];
      await this.invalidateLocked(addr, end, 'unmap', null, () => {
        this.splitAt(addr);
        this.splitAt(end);
        this.vmas = this.vmas.filter((v) => {
          const gone = v.start >= addr && v.end <= end;
          if (gone && v.kind === 'device') closing.push(v);
          return !gone;
        });
        freed.push(...this.zapLocked(addr, end));
      });
      this.freePtes(freed);
      for (const v of closing) await v.vmOps?.close?.(v);
    });
  }

  /**
   * mprotect_fixup(), per VMA: one whose protection does not change is left
   * alone (`newflags == oldflags`: no change_protection(), no invalidation,
   * no PTE touched); when any changes, a 'protection' invalidation runs over
   * the range, as change_protection() does (MMU_NOTIFY_PROTECTION_VMA over
   * each populated PMD, raising or lowering), and the changed VMAs' PTE write
   * bits become what change_pte_range() leaves: a device-private entry
   * read-only (make_readable_device_private_entry; the owner's write
   * migrates it back, hmm.ts), a device-exclusive one read-only (its
   * restoring fault grants the write); any other RAM page read-only without
   * PROT_WRITE and writable again with it (MM_CP_TRY_CHANGE_WRITABLE: every
   * anonymous page here is PageAnonExclusive, there is no fork); the zero
   * page stays read-only.
   */
  async mprotect(addr: number, length: number, prot: number): Promise<void> {
    const end = addr + pageAlign(length);
    await this.locked(async () => {
      this.checkRange(addr, end);
      this.checkCovered(addr, end, 'mprotect');
      if (this.vmas.every((v) => v.end <= addr || v.start >= end || v.prot === prot)) return;
      await this.invalidateLocked(addr, end, 'protection', null, () => {
        this.splitAt(addr);
        this.splitAt(end);
        const write = (prot & PROT_WRITE) !== 0;
        for (const v of this.vmas) {
          if (v.start < addr || v.end > end || v.prot === prot) continue;
          v.prot = prot;
          for (let va = v.start; va < v.end; va += PAGE_SIZE) {
            const pte = this.pt.get(Math.floor(va / PAGE_SIZE));
            if (pte?.kind === 'devprivate') pte.write = false;
            else if (pte?.kind === 'ram') pte.write = write && pte.exclusive === undefined;
          }
        }
      });
    });
  }

  /**
   * madvise(MADV_DONTNEED): drop the pages; the next touch faults in zeroes.
   * A device-special VMA (VM_PFNMAP) is EINVAL, as madvise_dontneed_free_valid_vma()
   * says; refused before any VMA is touched (upstream zaps the VMAs before the
   * refused one first).
   */
  async madviseDontneed(addr: number, length: number): Promise<void> {
    const end = addr + pageAlign(length);
    await this.locked(async () => {
      this.checkRange(addr, end);
      this.checkCovered(addr, end, 'madvise');
      for (const v of this.vmas) {
        if (v.kind === 'device' && v.start < end && addr < v.end) throw new PeerVmaError('EINVAL', v.toString(), 'madvise(MADV_DONTNEED) of a device-special (VM_PFNMAP) mapping');
      }
      const freed: Pte[] = [];
      await this.invalidateLocked(addr, end, 'clear', null, () => freed.push(...this.zapLocked(addr, end)));
      this.freePtes(freed);
    });
  }

  /** A CPU load of [addr, +len): faults pages in (zero page on first touch). */
  async read(addr: number, len: number): Promise<Uint8Array> {
    const out = new Uint8Array(len);
    await this.locked(async () => {
      await this.cpuAccessLocked(addr, out, false);
    });
    return out;
  }

  /** A CPU store of `data` at addr. */
  async write(addr: number, data: Uint8Array): Promise<void> {
    await this.locked(async () => {
      await this.cpuAccessLocked(addr, data, true);
    });
  }

  /** exit_mmap(): release invalidation over everything, free every page, release notifiers. */
  async exit(): Promise<void> {
    if (this.dead) return;
    await this.locked(async () => {
      const freed: Pte[] = [];
      const closing = this.vmas.filter((v) => v.kind === 'device');
      await this.invalidateLocked(0, TASK_SIZE, 'release', null, () => {
        freed.push(...this.zapLocked(0, TASK_SIZE));
        this.vmas = [];
      });
      this.freePtes(freed);
      for (const v of closing) await v.vmOps?.close?.(v);
      this.notifiers.release();
      this.dead = true;
    });
  }

  /**
   * One invalidation around `mutate` (the PTE change). Lock held. Waits for
   * every deferred ack before returning.
   */
  async invalidateLocked(start: number, end: number, event: MmuNotifyEvent, owner: unknown, mutate: () => void): Promise<void> {
    this.lock.assertWriteHeld();
    const range = makeRange(start, end, event, owner, true);
    this.notifiers.invalidateRangeStart(range);
    try {
      mutate();
    } finally {
      await this.notifiers.invalidateRangeEnd(range, range.deferred);
    }
  }

  /**
   * An invalidation that changes no CPU PTE, so it needs no mmap_lock: an
   * exporter taking back device memory or a BAR slot (unmap_mapping_range
   * on a device file takes the file's lock, not the process's).
   */
  async revokeRange(start: number, end: number, owner: unknown): Promise<void> {
    if (this.dead) return;
    // Page requests first (page_request_order.ts); not under our mmap_lock, which their service takes.
    const first = this.lock.isHeld ? undefined : this.kernel.pageRequests.servePending();
    if (first) await first;
    if (this.dead) return;
    const range = makeRange(start, end, 'clear', owner, true);
    this.notifiers.invalidateRangeStart(range);
    await this.notifiers.invalidateRangeEnd(range, range.deferred);
  }

  /**
   * A non-blockable invalidation (as from an OOM reaper): returns 'EAGAIN'
   * when a callback could not take its lock, and then nothing changed.
   */
  async tryInvalidate(start: number, end: number, event: MmuNotifyEvent): Promise<0 | Errno> {
    const range = makeRange(start, end, event, null, false);
    const r = this.notifiers.invalidateRangeStart(range);
    if (r !== 0) return r; // On EAGAIN the caller must not call invalidate_range_end.
    await this.notifiers.invalidateRangeEnd(range, range.deferred);
    return 0;
  }

  /**
   * handle_mm_fault() for one page of an anonymous VMA. Lock held. Returns
   * 0 or an errno (EFAULT, EPERM, ENOMEM).
   */
  async handleMmFaultLocked(vma: Vma, va: number, write: boolean): Promise<0 | Errno> {
    this.lock.assertWriteHeld();
    if (!vma.isAnon) return 'EFAULT';
    if (!vma.readable) return 'EFAULT';
    if (write && !vma.writable) return 'EPERM';
    const vpn = Math.floor(va / PAGE_SIZE);
    let pte = this.pt.get(vpn);
    if (pte?.kind === 'devprivate') {
      // do_swap_page -> pgmap->ops->migrate_to_ram()
      const r = await pte.devmem.migrateToRam(this, vpn * PAGE_SIZE);
      if (r !== 0) return r;
      pte = this.pt.get(vpn);
    }
    if (pte?.kind === 'ram' && pte.exclusive !== undefined) {
      // do_swap_page -> remove_device_exclusive_entry(): the exclusive
      // holder is invalidated (MMU_NOTIFY_EXCLUSIVE), then the PTE is usable again.
      const p = pte;
      await this.invalidateLocked(vpn * PAGE_SIZE, (vpn + 1) * PAGE_SIZE, 'exclusive', null, () => void (p.exclusive = undefined));
    }
    if (!pte) {
      if (!write) {
        this.pt.set(vpn, zeroPte());
        return 0;
      }
      const pfn = this.allocRamPage();
      if (pfn < 0) return 'ENOMEM';
      this.pt.set(vpn, ramPte(pfn, true));
      return 0;
    }
    if (write && pte.kind === 'zero') {
      // wp_page_copy off the zero page: the read-only zero mapping is replaced.
      const pfn = this.allocRamPage();
      if (pfn < 0) return 'ENOMEM';
      await this.invalidateLocked(vpn * PAGE_SIZE, (vpn + 1) * PAGE_SIZE, 'clear', null, () => this.pt.set(vpn, ramPte(pfn, true)));
      return 0;
    }
    if (write && pte.kind === 'ram' && !pte.write) pte.write = true; // raising protection needs no invalidation
    return 0;
  }

  /**
   * make_device_exclusive(): faults the page in for write, invalidates
   * every other mapping of it (MMU_NOTIFY_EXCLUSIVE with `owner`) and marks
   * the PTE as held by `owner`; the next CPU or device fault on it restores
   * it (handleMmFaultLocked) with an invalidation the holder sees. Lock held.
   */
  async makeDeviceExclusiveLocked(va: number, owner: unknown): Promise<0 | Errno> {
    this.lock.assertWriteHeld();
    const vma = this.findVma(va);
    if (!vma || !vma.isAnon) return 'EFAULT';
    const r = await this.handleMmFaultLocked(vma, va, true);
    if (r !== 0) return r;
    const vpn = Math.floor(va / PAGE_SIZE);
    const pte = this.pt.get(vpn);
    if (pte?.kind !== 'ram') return 'EFAULT';
    await this.invalidateLocked(vpn * PAGE_SIZE, (vpn + 1) * PAGE_SIZE, 'exclusive', owner, () => void (pte.exclusive = owner));
    return 0;
  }

  /** Allocates and zeroes one RAM page; -1 when RAM is full. */
  allocRamPage(): number {
    const k = this.kernel;
    if (k.ram.freePages === 0) return -1;
    const pfn = k.ram.allocContig(1).start;
    k.ramBytes.fill(0, pfn * PAGE_SIZE, (pfn + 1) * PAGE_SIZE);
    return pfn;
  }

  /**
   * Frees the pages behind removed PTEs (after the acks): each run of
   * consecutive pages in one memory is freed (poisoned, merged) at once.
   */
  freePtes(ptes: readonly Pte[]): void {
    const ram: number[] = [];
    const priv = new Map<DevMemRef, number[]>();
    for (const p of ptes) {
      if (p.kind === 'ram') ram.push(p.pfn);
      else if (p.kind === 'devprivate') {
        const l = priv.get(p.devmem);
        if (l) l.push(p.page);
        else priv.set(p.devmem, [p.page]);
      }
    }
    this.kernel.ram.freePageList(ram);
    for (const [d, pages] of priv) d.freePageList(pages);
  }

  /** Removes the PTEs of [start, end); returns them for freeing after the invalidation. */
  private zapLocked(start: number, end: number): Pte[] {
    const out: Pte[] = [];
    const v0 = Math.floor(start / PAGE_SIZE);
    const v1 = Math.ceil(end / PAGE_SIZE);
    if (v1 - v0 > this.pt.size) {
      for (const [vpn, pte] of this.pt) {
        if (vpn >= v0 && vpn < v1) {
          this.pt.delete(vpn);
          out.push(pte);
        }
      }
    } else {
      for (let vpn = v0; vpn < v1; vpn++) {
        const pte = this.pt.get(vpn);
        if (pte) {
          this.pt.delete(vpn);
          out.push(pte);
        }
      }
    }
    return out;
  }

  /**
   * The CPU's load (ram -> buf) or store (buf -> ram) of buf at addr, page by page, faulting pages in.
   * One copy call site for both directions and every page kind, and every PTE test evaluated on
   * every page (cpuPteUsable): the optimized code then meets nothing new when another mode's run
   * stores where the last one loaded. A callback per direction deoptimized it ("wrong feedback
   * cell") in --compare's bounce warm-up, and it recompiled inside p2p's timed window.
   */
  private async cpuAccessLocked(addr: number, buf: Uint8Array, write: boolean): Promise<void> {
    const len = buf.length;
    let done = 0;
    while (done < len) {
      const va = addr + done;
      const inPage = va % PAGE_SIZE;
      const n = Math.min(len - done, PAGE_SIZE - inPage);
      const vma = this.findVma(va);
      if (!vma || !vma.readable || (write && !vma.writable)) throw this.cpuSegv(va, write, vma);
      let page: Uint8Array;
      let off: number;
      if (vma.kind === 'device') {
        page = this.cpuDevicePage(vma, va, write);
        off = inPage;
      } else {
        const vpn = Math.floor(va / PAGE_SIZE);
        let pte = this.pt.get(vpn);
        if (!cpuPteUsable(pte, write)) {
          const r = await this.handleMmFaultLocked(vma, va, write);
          if (r !== 0) throw new PeerVmaError(r, cpuAccessName(va, write, this.name), r === 'ENOMEM' ? 'out of system RAM' : 'fault failed');
          pte = this.pt.get(vpn)!;
        }
        page = this.kernel.ramBytes;
        off = (pte!.kind === 'ram' ? pte!.pfn : this.kernel.zeroPfn) * PAGE_SIZE + inPage;
      }
      const dst = write ? page : buf;
      const src = write ? buf : page;
      const srcOff = write ? done : off;
      dst.set(src.subarray(srcOff, srcOff + n), write ? off : done);
      done += n;
    }
  }

  /** The exporter's page behind a device-special VMA (vm_ops->fault for a CPU access), or SIGBUS at the faulting address (si_addr: va itself, not its page). */
  private cpuDevicePage(vma: Vma, va: number, write: boolean): Uint8Array {
    const page = vma.vmOps?.cpuPage?.(vma, va - (va % PAGE_SIZE), write);
    if (page === undefined || typeof page === 'string') throw new PeerVmaError('EFAULT', cpuAccessName(va, write, this.name), `${vma}: the exporter does not let the CPU map this memory (SIGBUS)`);
    return page;
  }

  /** The SIGSEGV of a CPU access with no VMA or one whose protection forbids it. */
  private cpuSegv(va: number, write: boolean, vma: Vma | undefined): PeerVmaError {
    const what = cpuAccessName(va, write, this.name);
    return vma ? new PeerVmaError('EFAULT', what, `${vma} does not allow it (SIGSEGV)`) : new PeerVmaError('EFAULT', what, 'no mapping there (SIGSEGV)');
  }

  /** Splits the VMA containing addr so that a VMA boundary falls at addr. */
  private splitAt(addr: number): void {
    const v = this.findVma(addr);
    if (!v || v.start === addr) return;
    if (v.kind === 'device') return;
    const tail = new Vma(this, addr, v.end, v.prot, v.kind, v.vmOps, v.pgoff + (addr - v.start) / PAGE_SIZE, v.priv);
    v.end = addr;
    this.vmas.splice(this.vmas.indexOf(v) + 1, 0, tail);
  }

  private checkRange(start: number, end: number): void {
    if (start % PAGE_SIZE !== 0 || end <= start) throw new PeerVmaError('EINVAL', this.name, `range [0x${start.toString(16)}, 0x${end.toString(16)}) is empty or not page aligned`);
  }

  private checkCovered(start: number, end: number, what: string): void {
    for (let va = start; va < end; ) {
      const v = this.findVma(va);
      if (!v) throw new PeerVmaError('ENOMEM', this.name, `${what}: 0x${va.toString(16)} is not mapped`);
      if (v.kind === 'device' && (start > v.start || end < v.end)) throw new PeerVmaError('EINVAL', v.toString(), `${what} of part of a device-special mapping`);
      va = v.end;
    }
  }

  private checkAlive(): void {
    if (this.dead) throw new PeerVmaError('EINVAL', this.name, 'the process has exited');
  }
}

/**
 * Whether a CPU access may use pte without a fault (handle_mm_fault's "nothing to do"): RAM not
 * held exclusive by a device, writable for a store; the zero page for a load. Every test runs on
 * every call, so no compare in the optimized caller lacks feedback when a run first stores.
 */
function cpuPteUsable(pte: Pte | undefined, write: boolean): boolean {
  if (pte === undefined) return false;
  const ram = pte.kind === 'ram';
  const zero = pte.kind === 'zero';
  const shared = pte.exclusive === undefined;
  const writable = pte.write;
  return write ? ram && shared && writable : (ram && shared) || zero;
}

/** The subject of a failed CPU access's error, e.g. "CPU store to 0x7f0000001000 in proc". */
function cpuAccessName(va: number, write: boolean, mm: string): string {
  return `CPU ${write ? 'store to' : 'load from'} 0x${va.toString(16)} in ${mm}`;
}

export { PROT_NONE, PROT_READ, PROT_WRITE };
export const vpnOf = (va: number): number => Math.floor(va / PAGE_SIZE);
