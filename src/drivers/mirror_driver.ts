/**
 * Driver of the mirror device: the kernel half of lib/test_hmm.c's dmirror.
 *
 * Mirrors lib/test_hmm.c:
 *   dmirror_fops_open()/release()       -> MirrorDriver.open / close
 *   dmirror_interval_invalidate()       -> MirrorDriver.invalidate (the
 *       binding is its own notifier ops; ImporterBinding.invalidate skips
 *       MMU_NOTIFY_MIGRATE whose owner is our own devmem; this one also
 *       erases the atomic entries in the range)
 *   dmirror_range_fault()/dmirror_fault() -> ImporterBinding.serveOne (the
 *       device asks through its page-request mailbox; the retry loop is
 *       completed in the worker, workers/runtime/device_tlb.ts)
 *   dmirror_read()/dmirror_write()      -> read / write (done by the device)
 *   dmirror_migrate_to_device()/_to_system() -> migrateToDev / migrateToSys
 *   dmirror_snapshot() + dmirror_mkentry() -> snapshot (HMM_DMIRROR_PROT_*)
 *   dmirror_exclusive()/dmirror_check_atomic() -> exclusive / checkExclusive
 *   HMM_DMIRROR_RELEASE                 -> releaseDeviceMemory
 *
 * The binding (fault service, invalidate callback, IOMMU mappings) is the
 * generic ImporterBinding (src/drivers/importer_binding.ts); this file adds
 * the dmirror commands. Fault service, one page request group at a time (driver side
 * of the protocol in src/shm/tlb_layout.ts):
 *
 *   seq = notifier.readBegin()            (waits out an invalidation of us)
 *   mm.lock; hmmRangeFault(range)         EBUSY -> reply EBUSY (device retries)
 *   driver lock; readRetry(seq)?          -> reply EBUSY
 *   IOMMU on: map each page into our domain, reply with IOVAs
 *   reply; unlock; mm.unlock
 *
 * Invalidate callback (runs inside invalidateRangeStart):
 *   lock (tryLock for non-blockable: EAGAIN on failure); setSeq(curSeq)
 *   unmap our IOVAs in the range; defer(broadcast VA + IOVA ranges -> ack,
 *   then release IOVAs and p2pUnmap the exporter pages we held); unlock
 *
 * Lifetime: open() attaches the device to one Mm (one notifier over the
 * whole address space); close() removes the notifier, drops the device's
 * translations and stops the fault server.
 */
import { PeerVmaError } from '../errors.js';
import { PAGE_SIZE } from '../shm/constants.js';
import { HMM_PFN_DEVICE_PRIVATE, HMM_PFN_ERROR, HMM_PFN_VALID, HMM_PFN_WRITE, HMM_PFN_ZERO, HmmPfns, hmmRangeFault, type HmmRange } from '../kernel/hmm.js';
import type { Kernel } from '../kernel/kernel.js';
import { migrateToDevice, migrateToRamLocked, migrateToSystem } from '../kernel/migrate.js';
import type { Mm } from '../kernel/mm.js';
import type { IntervalNotifier, MmuNotifierRange } from '../kernel/mmu_notifier.js';
import { ImporterBinding } from './importer_binding.js';

/** Snapshot bytes, HMM_DMIRROR_PROT_* of lib/test_hmm_uapi.h. */
export const MIRROR_PROT = {
  ERROR: 0xff,
  NONE: 0x00,
  READ: 0x01,
  WRITE: 0x02,
  ZERO: 0x10,
  DEV_PRIVATE_LOCAL: 0x20,
  DEV_PRIVATE_REMOTE: 0x30,
} as const;

/** Pages per hmm_range_fault of a snapshot (dmirror_snapshot's pfns[64]). */
const SNAPSHOT_PAGES = 64;

/** Bounce pages the driver keeps out of the device-private pool. */
const MIRROR_BOUNCE_PAGES = 16;

export interface MirrorIoResult {
  readonly data: Uint8Array | null;
  /** dmirror_fault() calls during this command (`cmd->faults`). */
  readonly faults: number;
  /** Page requests to the kernel (64 pages at most each) during this command. */
  readonly requests: number;
  readonly pagesFaulted: number;
  /** Pages copied (`cmd->cpages`). */
  readonly cpages: number;
}

export class MirrorDriver extends ImporterBinding {
  /** VA pages with an atomic (device-exclusive) entry: DPT_XA_TAG_ATOMIC of the dmirror's table. */
  private readonly atomic = new Set<number>();

  /** dmirror_fops_open(): binds the device to `mm`. The machine must be started. */
  static async open(kernel: Kernel, devName: string, mm: Mm): Promise<MirrorDriver> {
    const dev = kernel.machine.device(devName);
    if (dev.spec.kind !== 'mirror') throw new PeerVmaError('ENODEV', devName, `is a '${dev.spec.kind}', not a mirror device`);
    const devmem = kernel.devmem(devName);
    // Keep the first pages as bounce buffers (allocated once, never freed).
    const bounce = devmem.dev.mem!.allocContig(MIRROR_BOUNCE_PAGES);
    const d = new MirrorDriver(kernel, dev, mm);
    await d.attach({ op: 'attach', ...d.bindInfo(), bounceOff: bounce.start * PAGE_SIZE, bouncePages: MIRROR_BOUNCE_PAGES });
    d.startServer();
    return d;
  }

  /* ---------------- commands ---------------- */

  /** dmirror_fops_unlocked_ioctl()'s checks: page-aligned address, npages >= 1. */
  private checkCmd(what: string, va: number, npages: number): void {
    if (!Number.isSafeInteger(va) || va % PAGE_SIZE !== 0 || !Number.isSafeInteger(npages) || npages <= 0) {
      throw new PeerVmaError('EINVAL', this.name, `${what} of 0x${va.toString(16)} +${npages} pages: the address must be page aligned and npages >= 1`);
    }
  }

  /** HMM_DMIRROR_READ: the device reads [va, +npages) through its TLB. */
  async read(va: number, npages: number): Promise<MirrorIoResult> {
    this.checkCmd('READ', va, npages);
    const r = await this.cmd({ op: 'read', va, npages });
    return { data: r.data, faults: r.faults, requests: r.requests, pagesFaulted: r.pagesFaulted, cpages: r.cpages };
  }

  /**
   * HMM_DMIRROR_WRITE: the device writes npages pages of `data` at va.
   * `data` must be exactly npages pages (EINVAL otherwise), as the ioctl
   * copies npages pages from cmd->ptr.
   */
  async write(va: number, npages: number, data: Uint8Array): Promise<MirrorIoResult> {
    this.checkCmd('WRITE', va, npages);
    const r = await this.cmd({ op: 'write', va, npages, data });
    return { data: null, faults: r.faults, requests: r.requests, pagesFaulted: r.pagesFaulted, cpages: r.cpages };
  }

  /**
   * HMM_DMIRROR_MIGRATE_TO_DEV: migrates the system pages of [va, +npages)
   * to this device, then reads the range back from device memory as
   * dmirror_do_read does: `cpages` counts the pages that are this device's
   * now (migrated now or before), `data` holds their bytes; a page we hold
   * device-exclusive is not migrated but is in our table all the same
   * (read from RAM). A page that is neither (shared anonymous memory,
   * another device's page, no device memory left) fails the command with
   * ENOENT, as upstream.
   */
  async migrateToDev(va: number, npages: number): Promise<{ cpages: number; data: Uint8Array }> {
    this.checkCmd('MIGRATE_TO_DEV', va, npages);
    await migrateToDevice(this.mm, va, va + npages * PAGE_SIZE, this.devmem);
    return this.mm.locked(() => {
      const data = new Uint8Array(npages * PAGE_SIZE);
      for (let i = 0; i < npages; i++) {
        const pte = this.mm.pt.get(va / PAGE_SIZE + i);
        if (pte?.kind === 'ram' && this.atomic.has(va / PAGE_SIZE + i)) {
          // Held device-exclusive (not migrated): dmirror_do_read finds it in the mirror's table (DPT_XA_TAG_ATOMIC).
          data.set(this.kernel.ramBytes.subarray(pte.pfn * PAGE_SIZE, (pte.pfn + 1) * PAGE_SIZE), i * PAGE_SIZE);
          continue;
        }
        if (pte?.kind !== 'devprivate' || pte.devmem !== this.devmem) {
          throw new PeerVmaError('ENOENT', this.name, `MIGRATE_TO_DEV: 0x${(va + i * PAGE_SIZE).toString(16)} is not in ${this.name}'s memory after the migration (${pte?.kind === 'devprivate' ? `it is ${pte.devmem.owner.name}'s` : 'not migratable'}); cpages ${i}`);
        }
        data.set(this.devmem.bytes.subarray(pte.page * PAGE_SIZE, (pte.page + 1) * PAGE_SIZE), i * PAGE_SIZE);
      }
      return { cpages: npages, data };
    });
  }

  /** HMM_DMIRROR_MIGRATE_TO_SYS: this device's pages of the range back to RAM; cpages = pages moved. */
  async migrateToSys(va: number, npages: number): Promise<{ cpages: number }> {
    this.checkCmd('MIGRATE_TO_SYS', va, npages);
    return { cpages: await migrateToSystem(this.mm, va, va + npages * PAGE_SIZE, this.devmem) };
  }

  /**
   * HMM_DMIRROR_RELEASE (dmirror_device_remove_chunks ->
   * dmirror_device_evict_chunk): every page of this device's memory, in any
   * process, migrates back to system RAM. Returns the pages moved.
   */
  async releaseDeviceMemory(): Promise<number> {
    const byMm = new Map<Mm, number[]>();
    for (const { mm, va } of this.devmem.rmap.values()) byMm.set(mm, [...(byMm.get(mm) ?? []), va]);
    let moved = 0;
    for (const [mm, vas] of byMm) {
      await mm.locked(async () => {
        for (const va of vas) {
          const r = await migrateToRamLocked(mm, va, va + PAGE_SIZE, this.devmem);
          if (typeof r === 'string') throw new PeerVmaError(r, this.name, `RELEASE: evicting 0x${va.toString(16)} of ${mm.name}`);
          moved += r;
        }
      });
    }
    return moved;
  }

  /**
   * HMM_DMIRROR_EXCLUSIVE (dmirror_exclusive): make_device_exclusive() on
   * each page, then an atomic entry in the mirror's table
   * (dmirror_atomic_map); returns the data read back and cpages. A CPU
   * touch of a page restores it and the invalidation drops the entry.
   */
  async exclusive(va: number, npages: number): Promise<{ cpages: number; data: Uint8Array }> {
    this.checkCmd('EXCLUSIVE', va, npages);
    return this.mm.locked(async () => {
      const data = new Uint8Array(npages * PAGE_SIZE);
      for (let i = 0; i < npages; i++) {
        const addr = va + i * PAGE_SIZE;
        const r = await this.mm.makeDeviceExclusiveLocked(addr, this.devmem);
        if (r !== 0) throw new PeerVmaError(r, this.name, `EXCLUSIVE: make_device_exclusive of 0x${addr.toString(16)} failed`);
        const pte = this.mm.pt.get(addr / PAGE_SIZE);
        if (pte?.kind !== 'ram') throw new PeerVmaError('EFAULT', this.name, `EXCLUSIVE: 0x${addr.toString(16)} is not in system RAM`);
        this.atomic.add(addr / PAGE_SIZE);
        data.set(this.kernel.ramBytes.subarray(pte.pfn * PAGE_SIZE, (pte.pfn + 1) * PAGE_SIZE), i * PAGE_SIZE);
      }
      return { cpages: npages, data };
    });
  }

  /** HMM_DMIRROR_CHECK_EXCLUSIVE (dmirror_check_atomic): EPERM while any page of the range still has an atomic entry. */
  checkExclusive(va: number, npages: number): void {
    this.checkCmd('CHECK_EXCLUSIVE', va, npages);
    for (let i = 0; i < npages; i++) {
      if (this.atomic.has(va / PAGE_SIZE + i)) throw new PeerVmaError('EPERM', this.name, `0x${(va + i * PAGE_SIZE).toString(16)} is still held exclusively by ${this.name}`);
    }
  }

  /**
   * dmirror_interval_invalidate() also erases atomic entries (dmirror_do_update),
   * except for our own migrations, which it returns from first.
   */
  override invalidate(sub: IntervalNotifier, range: MmuNotifierRange, curSeq: number): boolean {
    const ok = super.invalidate(sub, range, curSeq);
    if (range.event === 'migrate' && range.owner === this.devmem) return ok;
    if (ok) for (const vpn of [...this.atomic]) if (vpn * PAGE_SIZE >= range.start && vpn * PAGE_SIZE < range.end) this.atomic.delete(vpn);
    return ok;
  }

  /**
   * HMM_DMIRROR_SNAPSHOT: one MIRROR_PROT byte per page, without faulting
   * (dmirror_range_snapshot: 64 pages per hmm_range_fault); cpages = npages.
   */
  async snapshot(va: number, npages: number): Promise<{ prot: Uint8Array; cpages: number }> {
    this.checkCmd('SNAPSHOT', va, npages);
    const prot = new Uint8Array(npages);
    for (let i = 0; i < npages; i += SNAPSHOT_PAGES) {
      const n = Math.min(SNAPSHOT_PAGES, npages - i);
      prot.set(await this.rangeSnapshot(va + i * PAGE_SIZE, n), i);
    }
    return { prot, cpages: npages };
  }

  /** dmirror_range_snapshot(): read_begin -> hmm_range_fault -> lock -> read_retry, EBUSY after 1000 ms. */
  private async rangeSnapshot(va: number, npages: number): Promise<Uint8Array> {
    const deadline = performance.now() + 1000;
    while (performance.now() < deadline) {
      const seq = await this.notifier.readBegin();
      const range: HmmRange = { notifier: this.notifier, notifierSeq: seq, start: va, end: va + npages * PAGE_SIZE, defaultFlags: 0, devPrivateOwner: this.devmem, importer: this.ref, pfns: new HmmPfns(npages) };
      const r = await this.mm.locked(() => hmmRangeFault(this.mm, range));
      if (r === 'EBUSY') continue;
      if (r !== 0) throw range.error ?? new PeerVmaError(r, this.name, 'snapshot failed');
      await this.lock.lock();
      try {
        if (this.notifier.readRetry(seq)) continue;
        const { flags, mem } = range.pfns;
        return Uint8Array.from(flags, (f, i) => this.mkentry(f, mem[i]));
      } finally {
        this.lock.unlock();
      }
    }
    throw new PeerVmaError('EBUSY', this.name, 'snapshot kept colliding with invalidations for 1000 ms');
  }

  async counters(): Promise<{ requests: number; pagesFaulted: number; retries: number; tlb: number; iotlb: number }> {
    const r = await this.cmd({ op: 'counters' });
    return { requests: r.requests, pagesFaulted: r.pagesFaulted, retries: r.retries, tlb: r.tlb, iotlb: r.iotlb };
  }

  /** dmirror_mkentry(). */
  private mkentry(flags: number, mem: number): number {
    if (flags & HMM_PFN_ERROR) return MIRROR_PROT.ERROR;
    if (!(flags & HMM_PFN_VALID)) return MIRROR_PROT.NONE;
    let perm: number = MIRROR_PROT.NONE;
    if (flags & HMM_PFN_DEVICE_PRIVATE) perm = mem === this.ref.index ? MIRROR_PROT.DEV_PRIVATE_LOCAL : MIRROR_PROT.DEV_PRIVATE_REMOTE;
    else if (flags & HMM_PFN_ZERO) perm = MIRROR_PROT.ZERO;
    return perm | (flags & HMM_PFN_WRITE ? MIRROR_PROT.WRITE : MIRROR_PROT.READ);
  }

  protected override get detachOp(): 'detach' {
    return 'detach';
  }
}
