/**
 * A generic exporter driver: a device's local memory offered to peers as a
 * device-special VMA (the mmap of its device file), behind the RFC's
 * vm_ops.p2pMap / p2pUnmap, with the exporter's policy as data.
 *
 * Mirrors the exporting side of RFC patch 3/5 ("the exporter decides"):
 * the policy and the final decision belong to this driver alone; it hands
 * out bus addresses of its BAR window, manages that window (BarManager:
 * drop-behind recycling under pressure), and can take its memory back at any time
 * (revoke: invalidate every importer mapping, wait for the acks, move the
 * data, free the old pages — generation bump + poison).
 *
 * Policy (ExportPolicy), checked in this order by p2pMap; each refusal is
 * an errno with a sentence naming both ends and the knob to change:
 *   importers     '*' or the device names allowed            -> EPERM
 *   readOnly      write mappings refused                      -> EPERM
 *   requireIommu  importer must sit behind an IOMMU           -> EPERM
 *   topology      kernel.p2pAllowed(exporter, importer)       -> EOPNOTSUPP
 *                (pci_p2pdma_distance() < 0: what vfio's dma-buf attach returns;
 *                asked at mmap for the named importers to cache the verdict,
 *                refused only at p2pMap)
 *   BAR budget    more pages than the window has slots        -> ENOSPC
 * cpuMappable: whether the CPU may touch the memory (else SIGBUS).
 * premap: map the buffer into free BAR slots at mmap (no importer holds
 * them until it faults: they are the first recycled, without invalidation).
 *
 * Contract kept: a range mapped once stays mappable while the VMA lives
 * (revoke remaps; it never turns into a refusal) — unless the exporter
 * revokes access itself (revokeAccess, the dma-buf / VFIO kind: importers
 * are invalidated as after dma_buf_move_notify, later maps fail ENODEV
 * until restoreAccess; the data stays where it is).
 */
import { PeerVmaError, type Errno } from '../errors.js';
import { PAGE_SIZE } from '../shm/constants.js';
import type { Device } from '../devices/machine.js';
import type { BarManager, SlotOwner } from '../kernel/bar_manager.js';
import { MmSlotOwner } from '../kernel/mm_slot_owner.js';
import type { Kernel } from '../kernel/kernel.js';
import { PROT_READ, PROT_WRITE, type Mm } from '../kernel/mm.js';
import type { DeviceRef, MmRef, P2pMapResult, VmOps } from '../kernel/kernel_types.js';
import type { Vma } from '../kernel/vma.js';
import { DriverLock } from '../kernel/driver_lock.js';
import type { PageAllocator } from '../shm/page_alloc.js';

export interface ExportPolicy {
  /** Importers allowed by name, or '*'. */
  readonly importers: '*' | readonly string[];
  readonly readOnly: boolean;
  readonly requireIommu: boolean;
  readonly cpuMappable: boolean;
  /**
   * Map the buffer into free BAR slots at mmap (as many pages as the window
   * has free slots, from the start; nothing is evicted for it), so first
   * faults find their slots ready. Default false.
   */
  readonly premap?: boolean;
}

/** Pages named by flat [i0, i1) run pairs. */
function runPageCount(runs: Int32Array): number {
  let n = 0;
  for (let r = 0; r < runs.length; r += 2) n += runs[r + 1] - runs[r];
  return n;
}

export const defaultExportPolicy: ExportPolicy = { importers: '*', readOnly: false, requireIommu: false, cpuMappable: false };

interface Backing {
  /** Device page of each VMA page. guarded by: main thread; changed only by revoke after the acks. */
  pages: Int32Array;
}

export class BarExporter implements VmOps {
  readonly name: string;
  readonly self: DeviceRef;
  readonly maxMapPages: number;
  private readonly dev: Device;
  private readonly alloc: PageAllocator;
  private readonly bar: BarManager;
  private readonly backing = new Map<Vma, Backing>();
  /** One slot owner per (importer, process): its holds are released by p2pUnmap. */
  private readonly owners = new Map<string, SlotOwner>();
  /** Serialises p2pMap's read of the backing pages against revoke's swap. protects: backing[*].pages */
  private readonly lock: DriverLock;
  /** Statistics. */
  mapCalls = 0;
  unmapCalls = 0;
  refusals = 0;
  revocations = 0;
  /** Revocable access (revokeAccess/restoreAccess): VMA -> revoked page indexes. guarded by: lock. */
  private readonly revoked = new Map<Vma, Set<number>>();
  accessRevocations = 0;
  accessRestores = 0;

  constructor(
    readonly kernel: Kernel,
    devName: string,
    readonly policy: ExportPolicy = defaultExportPolicy,
  ) {
    this.dev = kernel.machine.device(devName);
    if (!this.dev.mem) throw new PeerVmaError('ENODEV', devName, 'has no local memory to export');
    this.alloc = this.dev.mem;
    this.bar = kernel.bar(devName);
    this.self = kernel.ref(devName);
    this.name = `bar-exporter of ${devName}`;
    this.maxMapPages = this.bar.nSlots;
    this.lock = new DriverLock(`${devName} exporter`);
  }

  get barManager(): BarManager {
    return this.bar;
  }

  /**
   * mmap of the device file: `npages` of device memory as a device-special
   * VMA of `mm`. `backing`, when given, names the device pages to use (taken
   * from this device's allocator by the caller, owned by the exporter from
   * now on: benchmarks use it for scattered backing); else one contiguous run.
   * `premapped`: how many pages from the start premap put into BAR slots
   * (0 without premap), the part an importer may translate ahead with no
   * slot recycled for it.
   */
  async mmap(mm: Mm, npages: number, backing?: readonly number[]): Promise<{ va: number; vma: Vma; premapped: number }> {
    if (backing && backing.length !== npages) throw new PeerVmaError('EINVAL', this.name, `mmap of ${npages} pages given ${backing.length} backing pages`);
    this.askTopology(); // before anything is allocated: a policy that throws leaves nothing behind
    const ext = backing ? null : this.alloc.allocContig(npages);
    const pages = backing ? Int32Array.from(backing) : Int32Array.from({ length: npages }, (_, i) => ext!.start + i);
    for (const p of pages) this.dev.shm.mem!.fill(0, p * PAGE_SIZE, (p + 1) * PAGE_SIZE);
    const prot = PROT_READ | (this.policy.readOnly ? 0 : PROT_WRITE);
    const va = await mm.mmap({ length: npages * PAGE_SIZE, prot, kind: 'device', vmOps: this });
    const vma = mm.findVma(va)!;
    this.backing.set(vma, { pages });
    const premapped = this.policy.premap ? await this.bar.premap(pages) : 0;
    return { va, vma, premapped };
  }

  /**
   * Asks the kernel now whether each named importer may reach this device
   * (Kernel.p2pAllowed, pci_p2pdma_distance), so its per-pair verdict is
   * cached before the first p2p_map, which then only reads it. Only cached:
   * a refused pair is not an mmap error (mmap does not know who will map;
   * a dma-buf exporter's attach, which does, fails there), it still fails
   * at p2p_map with EOPNOTSUPP. Importers not named ('*', or a name not on
   * the machine) are asked at their first map. Why here: the policy is a
   * closure made per run, and its first call from inside p2pMapRuns'
   * optimized code was seen to deoptimize it ('wrong call target') inside
   * camera-chain-iommu's window (session 9; a review's four --trace-deopt
   * runs without this did not see it again).
   */
  private askTopology(): void {
    const { importers } = this.policy;
    if (importers === '*') return;
    for (const d of this.kernel.machine.devices) if (importers.includes(d.spec.name)) this.kernel.p2pAllowed(this.self, this.kernel.ref(d.spec.name));
  }

  /** The exporter writes its own memory (e.g. a device producing data). */
  fill(vma: Vma, offset: number, data: Uint8Array): void {
    const b = this.backingOf(vma);
    for (let done = 0; done < data.length; ) {
      const off = offset + done;
      const page = b.pages[Math.floor(off / PAGE_SIZE)];
      const n = Math.min(data.length - done, PAGE_SIZE - (off % PAGE_SIZE));
      this.dev.shm.mem!.set(data.subarray(done, done + n), page * PAGE_SIZE + (off % PAGE_SIZE));
      done += n;
    }
  }

  /** Device page backing VMA page i (for tests and tools). */
  pageOf(vma: Vma, i: number): number {
    return this.backingOf(vma).pages[i];
  }

  /* ---------------- vm_ops ---------------- */

  /** vm_ops p2p_map of [start, end): the one-run case of p2pMapRuns. */
  p2pMap(vma: Vma, importer: DeviceRef, start: number, end: number, write: boolean): Promise<P2pMapResult> {
    const n = (end - start) / PAGE_SIZE;
    return this.p2pMapRuns(vma, importer, start, n, Int32Array.of(0, n), write);
  }

  /**
   * vm_ops p2p_map of a page request's runs (one call per request, dense or
   * sparse): maps the pages of `runs` — flat [i0, i1) pairs of page indexes into the
   * window of `npages` pages from `start`, ascending and disjoint — with
   * one policy check, one lock and one BarManager.mapPageRuns. The result
   * is indexed by window page; entries outside the runs are 0 and mean
   * nothing. Refuses by the exporter's policy, a revoked page in any run
   * (ENODEV) or runs larger than the BAR window (ENOSPC).
   */
  async p2pMapRuns(vma: Vma, importer: DeviceRef, start: number, npages: number, runs: Int32Array, write: boolean): Promise<P2pMapResult> {
    this.mapCalls++;
    const refuse = this.refuser(importer);
    const no = this.policyRefusal(importer, write, refuse);
    if (no) return no;
    if (!this.lock.tryLock()) await this.lock.lock();
    let pages: Int32Array;
    let bus: Float64Array | null;
    try {
      for (let r = 0; r < runs.length; r += 2) {
        const s = start + runs[r] * PAGE_SIZE;
        const e = start + runs[r + 1] * PAGE_SIZE;
        if (this.revokedIn(vma, s, e)) return refuse('ENODEV', `[0x${s.toString(16)}, 0x${e.toString(16)}) is revoked by the exporter (dma-buf move_notify / VFIO revoke): maps fail until it restores access`);
      }
      const i0 = (start - vma.start) / PAGE_SIZE;
      // A copy: revoke replaces b.pages, and the caller keeps these.
      pages = this.backingOf(vma).pages.slice(i0, i0 + npages);
      bus = await this.bar.mapPageRuns(pages, runs, this.ownerOf(importer, vma.mm), start, vma);
    } finally {
      this.lock.unlock();
    }
    if (!bus) return refuse('ENOSPC', `the ${runPageCount(runs)} pages asked do not fit its BAR window of ${this.bar.nSlots} slots`);
    const gen = this.dev.shm.barGen!; // a translation through the BAR: its slot's closing ends it (src/kernel/bar_manager.ts)
    const gens = new Int32Array(npages);
    for (let r = 0; r < runs.length; r += 2) for (let k = runs[r]; k < runs[r + 1]; k++) gens[k] = Atomics.load(gen, pages[k]);
    return { ok: true, bus, gens, mem: this.self.index, pages };
  }

  /** Builds refusals (counted) naming both ends. */
  private refuser(importer: DeviceRef): (errno: Errno, reason: string) => P2pMapResult {
    return (errno, reason) => {
      this.refusals++;
      return { ok: false, errno, reason: `${this.name} refuses ${importer.name}: ${reason}` };
    };
  }

  /** The policy's answer for `importer` (ExportPolicy order, file comment): a refusal, or null when it may map. */
  private policyRefusal(importer: DeviceRef, write: boolean, refuse: (errno: Errno, reason: string) => P2pMapResult): P2pMapResult | null {
    const p = this.policy;
    if (p.importers !== '*' && !p.importers.includes(importer.name)) return refuse('EPERM', `not an allowed importer (policy importers: [${p.importers.join(', ')}])`);
    if (write && p.readOnly) return refuse('EPERM', 'the memory is exported read-only (policy readOnly: true)');
    if (p.requireIommu && !this.kernel.iommuEnabledFor(importer.name)) return refuse('EPERM', `the exporter requires the importer behind an IOMMU, and ${importer.name} has none (policy requireIommu; or turn the IOMMU on for ${importer.name})`);
    const topo = this.kernel.p2pAllowed(this.self, importer);
    if (!topo.ok) return refuse('EOPNOTSUPP', topo.reason);
    return null;
  }

  /**
   * The slot owner of `importer` in `mm`: its revoke invalidates a VA run of
   * the process (every importer of it: over-invalidation is safe), so
   * BarManager can take slots back in runs, one invalidation per run.
   */
  private ownerOf(importer: DeviceRef, mm: MmRef): SlotOwner {
    const key = `${importer.name}@${mm.name}`;
    let o = this.owners.get(key);
    if (!o) {
      o = new MmSlotOwner(key, mm, this);
      this.owners.set(key, o);
    }
    return o;
  }

  /**
   * p2p_unmap: `importer` dropped its translations of [start, end) (after
   * the invalidation's ack): its hold on those slots goes, and a slot
   * nobody holds any more is reused later without an invalidation.
   */
  p2pUnmap(vma: Vma, importer: DeviceRef, start: number, end: number): void {
    this.unmapCalls++;
    this.bar.release(`${importer.name}@${vma.mm.name}`, start, end);
  }

  cpuPage(vma: Vma, addr: number): Uint8Array | Errno {
    if (!this.policy.cpuMappable) return 'EFAULT';
    if (this.revokedIn(vma, addr, addr + PAGE_SIZE)) return 'EFAULT'; // VFIO: a revoked BAR mmap faults with SIGBUS
    const page = this.backingOf(vma).pages[(addr - vma.start) / PAGE_SIZE];
    return this.dev.shm.mem!.subarray(page * PAGE_SIZE, (page + 1) * PAGE_SIZE);
  }

  async close(vma: Vma): Promise<void> {
    const b = this.backing.get(vma);
    if (!b) return;
    this.backing.delete(vma);
    this.revoked.delete(vma);
    // The unmap invalidation already ran and was acked: close slots, free pages.
    for (const p of b.pages) this.bar.dropPageNow(p);
    this.freeRuns(b.pages);
  }

  /** Frees pages as runs of consecutive pages: one extent each, not one per page. */
  private freeRuns(pages: Int32Array): void {
    const sorted = Int32Array.from(pages).sort();
    for (let i = 0; i < sorted.length; ) {
      let j = i + 1;
      while (j < sorted.length && sorted[j] === sorted[j - 1] + 1) j++;
      this.alloc.freeExtent({ start: sorted[i], count: j - i });
      i = j;
    }
  }

  /**
   * Takes the memory behind `vma` back: invalidate every importer mapping,
   * wait for the acks, then move the data to new pages and free the old
   * ones (generation bump + poison). Importers refault and continue.
   */
  async revoke(vma: Vma): Promise<void> {
    await this.lock.lock();
    try {
      await this.revokeLocked(vma);
    } finally {
      this.lock.unlock();
    }
  }

  /**
   * Lock held, so no p2pMap reads the old pages between the end of the
   * invalidation and the swap: a fault that collided with the revoke sees
   * readRetry and asks again, and then gets the new pages.
   */
  private async revokeLocked(vma: Vma): Promise<void> {
    const b = this.backingOf(vma);
    await vma.mm.revokeRange(vma.start, vma.end, this);
    const mem = this.dev.shm.mem!;
    const ext = this.alloc.allocContig(b.pages.length);
    const old = b.pages;
    b.pages = Int32Array.from({ length: old.length }, (_, i) => ext.start + i);
    old.forEach((p, i) => {
      mem.copyWithin(b.pages[i] * PAGE_SIZE, p * PAGE_SIZE, (p + 1) * PAGE_SIZE);
      this.bar.dropPageNow(p);
    });
    this.freeRuns(old);
    this.revocations++;
  }

  /* ---------------- revocable access (dma-buf / VFIO style) ---------------- */

  /**
   * Revokes access to [start, end) of `vma`, as a dma-buf exporter (or
   * VFIO, on reset or a disabled BAR) does: every importer is invalidated
   * and its acks awaited (dma_buf_move_notify), the BAR slots of the pages
   * close (a device that kept its translation reaches nothing, and with the
   * IOMMU on its IOVAs are gone: IOMMU fault), and later p2pMap calls fail
   * ENODEV until restoreAccess. The pages and their bytes stay as they are.
   *
   *   mark revoked (lock held: no p2pMap in between)
   *   invalidate importers, wait for acks   -> a fault in flight sees
   *                                            readRetry, asks again: ENODEV
   *   close the BAR slots of the pages
   */
  async revokeAccess(vma: Vma, start = vma.start, end = vma.end): Promise<void> {
    const b = this.backingOf(vma);
    await this.lock.lock();
    try {
      const set = this.revoked.get(vma) ?? new Set<number>();
      this.revoked.set(vma, set);
      for (let va = start; va < end; va += PAGE_SIZE) set.add((va - vma.start) / PAGE_SIZE);
      await vma.mm.revokeRange(start, end, this);
      for (let va = start; va < end; va += PAGE_SIZE) this.bar.dropPageNow(b.pages[(va - vma.start) / PAGE_SIZE]);
      this.accessRevocations++;
    } finally {
      this.lock.unlock();
    }
  }

  /** Gives access to [start, end) back: importers map it again on their next fault. */
  async restoreAccess(vma: Vma, start = vma.start, end = vma.end): Promise<void> {
    await this.lock.lock();
    try {
      const set = this.revoked.get(vma);
      for (let va = start; va < end; va += PAGE_SIZE) set?.delete((va - vma.start) / PAGE_SIZE);
      if (set?.size === 0) this.revoked.delete(vma);
      this.accessRestores++;
    } finally {
      this.lock.unlock();
    }
  }

  /** Is any page of [start, end) of `vma` revoked? */
  revokedIn(vma: Vma, start: number, end: number): boolean {
    const set = this.revoked.get(vma);
    if (!set) return false;
    for (let va = start; va < end; va += PAGE_SIZE) if (set.has((va - vma.start) / PAGE_SIZE)) return true;
    return false;
  }

  private backingOf(vma: Vma): Backing {
    const b = this.backing.get(vma);
    if (!b) throw new PeerVmaError('EINVAL', vma.toString(), `not a mapping of ${this.name}`);
    return b;
  }
}
