/**
 * Binds a device to a process address space, so the device can DMA by
 * process virtual address: the generic importer half of the RFC (what
 * lib/test_hmm.c's dmirror does for its one device, and what SVA-capable
 * drivers do with iommu_sva_bind_device + an interval notifier).
 *
 * Kernel side of the page-request protocol (src/shm/tlb_layout.ts): the
 * device posts page request groups in PRI_GROUPS mailbox groups and rings
 * one bell; they are served one at a time, those the device waits for
 * first, each kind in the order posted (the IOMMU's page request queue
 * hands them to iommu_report_device_fault in order, but upstream's iopf
 * workqueue is unbound: groups complete in any order), each:
 *
 *   seq = notifier.readBegin()            (waits out an invalidation of us)
 *   mm.lock; hmmRangeFault(range)         EBUSY -> reply EBUSY (device retries)
 *     (a sparse request faults only the pages of its mask: per-page
 *     REQ_FAULT in hmm_pfns, the others are not touched)
 *   driver lock; readRetry(seq)?          -> reply EBUSY
 *   IOMMU on: each page's IOVA (its earlier one when that still maps the
 *     page for the same access, else a new one: iovaFor), reply with IOVAs
 *   reply; unlock; mm.unlock
 *
 * Invalidate callback (runs inside invalidateRangeStart):
 *   lock (tryLock for non-blockable: EAGAIN on failure); setSeq(curSeq)
 *   defer(broadcast the VA range -> ack; then, IOMMU on, unmap our IOVAs
 *   in the range and flush them -> ack (a one-device domain: the IOVAs,
 *   drained, ride in the VA range's post, one ack); then p2pUnmap the
 *   exporter pages we held: flushLocked); unlock
 *
 * Lifetime: bind() attaches the device to one Mm (one notifier over the
 * whole address space) and starts the fault server; close() stops the
 * server, has the device drop its translations (detach), removes the
 * notifier, then unmaps our IOVAs and p2p_unmaps what we held (releaseAll;
 * a device that failed keeps both).
 * Subclasses (MirrorDriver) add device commands; plain devices use
 * ImporterBinding.bind, whose device half is workers/runtime/va_space.ts.
 */
import { DeviceError, PeerVmaError, type Errno } from '../errors.js';
import { PAGE_SIZE } from '../shm/constants.js';
import { DeviceStats, ringWake } from '../shm/device_ctl.js';
import { allocLayout, loadU64, storeU64 } from '../shm/layout.js';
import { errnoCode, FAULT_WINDOW, PageRequest, pageAsked, priGroup, PriMailbox, PRI_GROUPS, ReplyEntry, SPARSE_SPAN } from '../shm/tlb_layout.js';
import type { Device } from '../devices/machine.js';
import type { BindInfo, DeviceCmd, DeviceOk, DeviceOp } from '../devices/protocol.js';
import { deviceCmdOk } from './device_cmd.js';
import { HeldRanges } from './held_ranges.js';
import { postMigrated, type MapTarget } from './migrate_map.js';
import { DriverMap } from '../shm/driver_map_layout.js';
import { IovaTable } from './iova_table.js';
import type { DevMem } from '../kernel/devmem.js';
import { HMM_PFN_DEVICE_PRIVATE, HMM_PFN_P2P, HMM_PFN_REQ_FAULT, HMM_PFN_REQ_WRITE, HMM_PFN_WRITE, HmmPfns, hmmRangeFault, type HmmRange } from '../kernel/hmm.js';
import type { IommuDomain } from '../kernel/iommu.js';
import type { Kernel } from '../kernel/kernel.js';
import type { PageRequestRefusals } from '../kernel/page_request_refusals.js';
import { TASK_SIZE, type Mm } from '../kernel/mm.js';
import { DriverLock } from '../kernel/driver_lock.js';
import { nextGroup } from '../kernel/page_request_order.js';
import { coalesce, type BeforePost } from '../kernel/invalidate_broadcast.js';
import type { IntervalNotifier, IntervalNotifierOps, MmuNotifierRange, MmuNotifyEvent } from '../kernel/mmu_notifier.js';
import type { DeviceRef, OwnerFlush } from '../kernel/kernel_types.js';
import { allocSafetyLog, readViolations, type Violation } from '../kernel/safety.js';
import type { Vma } from '../kernel/vma.js';
import { traceDev, TraceEvent, traceSink } from '../shm/trace_ring.js';

/**
 * The beforePost callback of a flush whose post carries its IOVAs: marks
 * each IOVA draining with the seq of the first post whose ranges cover it
 * (a batch too large for one post goes out as several).
 */
function drainHook(dom: IommuDomain, iovas: readonly number[]): BeforePost {
  let left = iovas;
  return (seq, batch) => {
    if (left.length > 0) left = dom.drainCovered(left, batch, seq);
  };
}

/** What the device is told when bound: its mailbox, IOMMU domain and safety log. */
export type { BindInfo };

/** A fault window's notifier only records that an invalidation hit it (mmu_interval_set_seq); the binding's own notifier flushes. */
const windowOps: IntervalNotifierOps = {
  invalidate(sub, _range, curSeq) {
    sub.setSeq(curSeq);
    return true;
  },
};

/**
 * A sparse request's window notifier: an invalidation counts as a
 * collision only when it takes a page the request asked for (the others
 * are neither faulted nor installed, so their revokes change nothing in
 * the reply). Without it, a revoke storm's revokes of the held pages
 * between the holes made nearly every window request EBUSY.
 */
function sparseWindowOps(start: number, want: Uint8Array): IntervalNotifierOps {
  return {
    invalidate(sub, range, curSeq) {
      const i0 = Math.max(0, Math.floor((range.start - start) / PAGE_SIZE));
      const i1 = Math.min(want.length, Math.ceil((range.end - start) / PAGE_SIZE));
      for (let i = i0; i < i1; i++) {
        if (want[i] !== 0) {
          sub.setSeq(curSeq);
          break;
        }
      }
      return true;
    },
  };
}

/** A VA range an importer holds p2p mappings of: from a device-special VMA's exporter, or from a peer's device memory. */
interface HeldRange {
  readonly vma: Vma | null;
  readonly devmem: DevMem | null;
  readonly start: number;
  readonly end: number;
}

export class ImporterBinding implements IntervalNotifierOps, OwnerFlush {
  readonly lock: DriverLock;
  readonly ref: DeviceRef;
  readonly notifier: IntervalNotifier;
  readonly devmem: DevMem;
  readonly domain: IommuDomain | null;
  /** The page-request mailbox (PriMailbox) and a view of each of its groups. */
  protected readonly pri: Int32Array;
  private readonly groups: Int32Array[];
  /** DriverMap mailbox: translations posted without a page request (src/drivers/migrate_map.ts). */
  private readonly map: Int32Array;
  /** Test seam of the post after a migration: runs between its readBegin and the driver lock. */
  beforeMapLock: (() => Promise<void> | void) | null = null;
  protected readonly safetySab = allocSafetyLog();
  /** VA page -> the IOVAs we mapped for it (at most one per access kind, until its next invalidation: iovaFor). guarded by: lock. */
  private readonly iovaOf = new IovaTable();
  /**
   * VA ranges we hold p2p mappings of, and whom to unmap them from: a
   * device-special VMA's exporter (vm_ops.p2pUnmap) or a peer's device
   * memory (DevMem.p2pUnmap). Merged per target, trimmed by flushes.
   * guarded by: lock.
   */
  private readonly p2pHeld = new HeldRanges<{ readonly vma: Vma | null; readonly devmem: DevMem | null }>();
  /**
   * Every VA range a page request was answered for (any memory: RAM,
   * device-private, peer), until a flush takes it out: what the device may
   * hold a translation of (holdsNothingIn). guarded by: lock.
   */
  private readonly translated = new HeldRanges<null>();
  /**
   * The VA ranges of flushLocked calls whose acks, IOTLB flush and p2p_unmap
   * are not done yet (holdsNothingIn): one entry per call, removed when it ends.
   */
  private readonly flushesInFlight: { readonly start: number; readonly end: number }[] = [];
  private closed = false;
  /** The device memory's ownerFlush before this binding took it: given back if the device refuses the bind. */
  private readonly ownerFlushBefore: OwnerFlush | null;
  /** Per group: the reqSeq served last. guarded by: the serve loop (one at a time). */
  private readonly served = new Int32Array(PRI_GROUPS);
  private server: Promise<void>;
  /** Page requests answered (any outcome). */
  requests = 0;
  /**
   * The kernel's lines (dmesg) for the device's refused page requests:
   * range, errno, and hmm's or the exporter's reason. A device only gets
   * the errno back; its driver adds the line of the failure it reports
   * (completionError, prefault), only when the failed page and errno match.
   */
  readonly refusals: PageRequestRefusals;
  /** Called after every answered page request (tests use it to interleave). */
  onFault: ((errno: 0 | Errno, start: number, npages: number) => void) | null = null;

  protected constructor(
    readonly kernel: Kernel,
    readonly dev: Device,
    readonly mm: Mm,
  ) {
    this.ref = kernel.ref(dev.spec.name);
    this.lock = new DriverLock(`${dev.spec.name} driver`);
    this.devmem = kernel.devmem(dev.spec.name);
    this.domain = kernel.domain(dev.spec.name);
    this.pri = allocLayout(PriMailbox);
    this.groups = Array.from({ length: PRI_GROUPS }, (_, g) => priGroup(this.pri, g));
    this.notifier = mm.notifiers.insert(0, TASK_SIZE, this, `${dev.spec.name} importer`);
    kernel.safetySources.push(this);
    this.ownerFlushBefore = this.devmem.ownerFlush;
    this.devmem.ownerFlush = this;
    this.map = allocLayout(DriverMap);
    this.server = Promise.resolve();
    this.refusals = kernel.refusals(dev.spec.name);
  }

  /**
   * Binds `devName` to `mm` with the generic device-side address space
   * (VaSpace). The machine must be started.
   */
  static async bind(kernel: Kernel, devName: string, mm: Mm): Promise<ImporterBinding> {
    const b = new ImporterBinding(kernel, kernel.machine.device(devName), mm);
    await b.attach({ op: 'bind-mm', ...b.bindInfo() });
    b.startServer();
    return b;
  }

  /**
   * Sends the device its bind (or attach) command; when the device refuses
   * (bound already, failed), undoes what the constructor set up, as a
   * driver's open() unwinds on error: a refused binding must not keep a
   * notifier over the whole address space nor a safety source, and above
   * all must not stay the device memory's ownerFlush, or the bound
   * binding's own-migration flushes would go to this one, which holds
   * nothing, and the device would keep translations of migrated pages.
   */
  protected async attach(cmd: DeviceCmd): Promise<void> {
    try {
      await this.cmd(cmd);
    } catch (e) {
      this.closed = true;
      await this.notifier.remove();
      const i = this.kernel.safetySources.indexOf(this);
      if (i >= 0) this.kernel.safetySources.splice(i, 1);
      if (this.devmem.ownerFlush === this) this.devmem.ownerFlush = this.ownerFlushBefore;
      throw e;
    }
  }

  protected bindInfo(): BindInfo {
    return { pri: this.pri.buffer as SharedArrayBuffer, map: this.map.buffer as SharedArrayBuffer, iommu: this.domain?.sab ?? null, safety: this.safetySab, check: this.kernel.check };
  }

  /** Once the device acked bind-mm: before that, no DeviceTlb would void a post an invalidation raced (ownerMap). */
  protected startServer(): void {
    // An earlier binding's refusals are no reason for this one's failures. Not before the device acked:
    // a bind it refused (bound already) must not drop the bound binding's.
    this.refusals.clear();
    this.devmem.ownerMap = (m, vpns) => (m === this.mm && !this.closed ? postMigrated(this.mapTarget(), vpns) : Promise.resolve(0));
    this.server = this.serve();
    this.kernel.pageRequests.add(this);
  }

  /** PageRequestSource: a request posted and not answered (served before revokes, src/kernel/page_request_order.ts). */
  requestPending(): boolean {
    return this.pendingUpTo(Atomics.load(this.pri, PriMailbox.bell));
  }

  /** PageRequestSource: the sequence of the request posted last (in any group). */
  postedSeq(): number {
    return Atomics.load(this.pri, PriMailbox.bell);
  }

  /** PageRequestSource: is a request posted at or before sequence `seq` still unanswered? */
  pendingUpTo(seq: number): boolean {
    if (this.closed || this.dev.handle.failed) return false;
    for (const p of this.groups) {
      const req = Atomics.load(p, PageRequest.reqSeq);
      if (req !== Atomics.load(p, PageRequest.replySeq) && ((req - seq) | 0) <= 0) return true;
    }
    return false;
  }

  get name(): string {
    return this.dev.spec.name;
  }

  violations(): { count: number; records: Violation[] } {
    return readViolations(this.name, this.safetySab);
  }

  /** dmirror_fops_release(). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.kernel.pageRequests.delete(this);
    Atomics.notify(this.pri, PriMailbox.bell);
    await this.server;
    // Detach before the notifier goes, as an SVA driver quiesces its device before iommu_sva_unbind_device():
    // an invalidation in between still reaches the device, which may translate until it acks the detach.
    const detached = !this.dev.handle.failed && (await this.cmd({ op: this.detachOp }).then(() => true, () => false));
    await this.notifier.remove();
    this.refusals.clear(); // unbound: the device's failures from now on are its own (EINVAL)
    if (detached) await this.releaseAll();
    else this.kernel.log.push(`${this.name}: closed without a detach (the device failed): its IOVAs and exporter holds are kept, never reused under it`);
  }

  /**
   * close()'s last step, once the device acked its detach (it dropped every
   * translation) and no invalidation can reach us (notifier removed): unmap
   * and flush every IOVA we still hold, then p2p_unmap every exporter
   * range, as dmirror_fops_release() leaves nothing mapped. Without it the
   * domain (one per device, it outlives the binding) kept PTEs to pages the
   * process may free, and exporters kept holds nobody would release. A
   * device that did not detach (failed: a failed device may still run) gets
   * none of this from close(): the holds stay, so no exporter recycles a
   * slot it may still reach. Nor does one whose flush was not acked: its
   * IOVAs stay unreleased (never reused) and its holds stay.
   */
  private async releaseAll(): Promise<void> {
    await this.lock.lock();
    try {
      const iovas = this.iovaOf.take(0, Number.MAX_SAFE_INTEGER);
      const held = this.takeHeld(0, Number.MAX_SAFE_INTEGER);
      this.translated.cut(0, Number.MAX_SAFE_INTEGER);
      const dom = this.domain;
      if (dom && iovas.length > 0) {
        for (const iova of iovas) dom.unmap(iova);
        if (!(await dom.flush(iovaRanges(iovas)).then(() => true, () => false))) return;
      }
      this.p2pUnmapAll(held);
    } finally {
      this.lock.unlock();
    }
  }

  /** Device command that drops every translation at close. */
  protected get detachOp(): 'unbind-mm' | 'detach' {
    return 'unbind-mm';
  }

  /* ---------------- invalidation ---------------- */

  /** dmirror_interval_invalidate(). */
  invalidate(sub: IntervalNotifier, range: MmuNotifierRange, curSeq: number): boolean {
    // Our own migrations: the migration code flushes us itself (ownerFlush).
    if (range.event === 'migrate' && range.owner === this.devmem) return true;
    const filter = this.filterOf(range.start, range.end, range.event);
    if (filter === 'skip') {
      sub.setSeq(curSeq);
      return true;
    }
    // An exporter's range ('p2p') is judged under the lock by the flush's own take of what we hold
    // (flushHeldLocked); with the lock held elsewhere, by a search of it (holdsNoP2pIn).
    if (!this.lock.tryLock()) {
      if (filter === 'p2p' && this.holdsNoP2pIn(range.start, range.end)) {
        sub.setSeq(curSeq);
        return true;
      }
      if (!range.blockable) return false;
      // Blockable with the lock held elsewhere: JS cannot sleep here, so the
      // seq is set now (single-threaded: no reader can interleave) and the
      // flush waits for the lock.
      sub.setSeq(curSeq);
      range.defer(this.lock.lock().then(() => this.flushLocked(range.start, range.end)).finally(() => this.lock.unlock()));
      return true;
    }
    try {
      sub.setSeq(curSeq);
      const flush = filter === 'p2p' ? this.flushHeldLocked(range.start, range.end) : this.flushLocked(range.start, range.end);
      if (flush) range.defer(flush);
    } finally {
      this.lock.unlock();
    }
    return true;
  }

  release(): void {
    this.closed = true;
  }

  /**
   * An invalidation of pages we hold no translation of: nothing to flush.
   * Every translation a device has came from a page request whose window
   * was recorded in `translated` (and its p2p part in p2pHeld) under the
   * lock before the reply (recordHeld). A flush takes its ranges out before
   * the device's ack, so nothing overlapping a flush in flight is skipped;
   * otherwise those records are what we may hold. This is what an interval
   * notifier per mirrored range gives upstream drivers
   * (mmu_interval_notifier calls only the intervals a range overlaps); our
   * one notifier spans the address space. Filtered:
   * - device VMAs whose exporter takes p2p_unmap, any event (p2pHeld): one
   *   exporter recycling slots under its importer invalidated every
   *   importer of the process (camera-farm: 8 acks awaited per recycle, 7
   *   of them for nothing);
   * - elsewhere, migrations only (`translated`): a migration to a device
   *   waited for the ack of every importer that had not touched the buffer
   *   yet (hmm-peer-fanout: 9 round trips before the copy). Other events
   *   still reach every importer: the stress harness (src/stress) detects
   *   a hung or late importer by the invalidations it fails to ack.
   */
  private holdsNothingIn(start: number, end: number, event: MmuNotifyEvent): boolean {
    const filter = this.filterOf(start, end, event);
    return filter === 'skip' || (filter === 'p2p' && this.holdsNoP2pIn(start, end));
  }

  /**
   * holdsNothingIn's verdict short of an exporter's range: 'skip' (nothing
   * held), 'flush' (it must be flushed), or 'p2p': a range of a device VMA
   * whose exporter takes p2p_unmap, held exactly when p2pHeld overlaps it
   * (holdsNoP2pIn).
   */
  private filterOf(start: number, end: number, event: MmuNotifyEvent): 'skip' | 'flush' | 'p2p' {
    // A post that timed out left ranges the device never acked (a flush that took them out of
    // `translated` and p2pHeld all the same): they ride with the next batch, so it must be sent.
    if (this.kernel.invalidator(this.name).hasUnacked) return 'flush';
    // A flush in flight took its ranges out of p2pHeld before its ack: the
    // device may still hold them, and an invalidation overlapping them must
    // queue behind that ack (the invalidator's batch) before its caller
    // reuses the pages. One elsewhere is judged by what we hold: a flush of
    // another exporter's range must not make it wait for our ack
    // (camera-farm: recycles of different engines served together each
    // waited for every camera whose own recycle was in flight). The flushes
    // in flight are searched last, only for a range we hold nothing of: a
    // revoke storm has up to a batch of them in flight, and most of its
    // ranges are held (inval.batched, DESIGN section 9).
    const vma = this.mm.findVma(start);
    if (vma && vma.kind === 'device' && vma.vmOps?.p2pUnmap && end <= vma.end) return 'p2p';
    if (event !== 'migrate') return 'flush';
    return !this.translated.overlaps(start, end) && !this.p2pHeld.overlaps(start, end) && !this.flushOverlaps(start, end) ? 'skip' : 'flush';
  }

  /** An exporter's range ('p2p'): nothing of it held, nor in a flush in flight. */
  private holdsNoP2pIn(start: number, end: number): boolean {
    return !this.p2pHeld.overlaps(start, end) && !this.flushOverlaps(start, end);
  }

  /** Does [start, end) overlap the range of a flush in flight? */
  private flushOverlaps(start: number, end: number): boolean {
    for (const f of this.flushesInFlight) if (f.start < end && start < f.end) return true;
    return false;
  }

  /** What postMigrated needs of us (DevMem.ownerMap). */
  private mapTarget(): MapTarget {
    return { name: this.name, mm: this.mm, lock: this.lock, devmem: this.devmem, map: this.map, beforeLock: this.beforeMapLock, recordTranslated: (s, e) => this.translated.add(this.translated, null, s, e) };
  }

  /** Own-migration flush (DevMem.ownerFlush; public for that interface, called only by migrate.ts); nothing to do when we hold no translation of the range (holdsNothingIn). */
  async flushOwn(start: number, end: number): Promise<void> {
    await this.lock.lock();
    let p: Promise<void>;
    try {
      if (this.holdsNothingIn(start, end, 'migrate')) return;
      p = this.flushLocked(start, end);
    } finally {
      this.lock.unlock();
    }
    await p;
  }

  /**
   * Drops our translations of [start, end); the returned promise resolves
   * once the device acked and, with the IOMMU on, its IOVAs are unmapped
   * and flushed. Upstream order (a driver's mmu notifier, then
   * dma_unmap_page): invalidate the device and wait for its ack, only then
   * iommu_unmap + iommu_iotlb_sync; only then give the pages back
   * (p2p_unmap). Unmapping first would make a well-behaved device's DMA in
   * flight before it saw the invalidation an IOMMU fault.
   *
   *   lock held: take the IOVAs and held ranges of [start, end)
   *   broadcast VA range -> ack
   *   unmap the IOVAs; IOTLB flush of them -> ack (covers a re-walk between
   *     the two: a rogue that kept its VA translations), release the IOVAs
   *   p2p_unmap the held ranges
   *
   * With a domain of this device alone, the IOTLB flush rides in the same
   * post as the VA range (one ack, as intel-iommu's cache_tag_flush_range
   * batches the IOTLB and device-TLB descriptors behind one wait
   * descriptor): just before the post, its IOVAs are marked draining
   * (IommuDomain.drain): walks of them succeed until the device acks that
   * post and fault after, so a rogue's re-walk between the ack and the
   * unmap faults instead of refilling its IOTLB. Then unmap, release,
   * p2p_unmap.
   */
  protected flushLocked(start: number, end: number): Promise<void> {
    this.lock.assertHeld();
    return this.flushTakenLocked(start, end, this.takeHeld(start, end));
  }

  /**
   * flushLocked of an exporter's range (filterOf 'p2p'), unless we hold
   * nothing of it (holdsNoP2pIn): then null, and nothing done. Its take of
   * p2pHeld is the test, so a held range costs one search of p2pHeld, not
   * two (an overlaps() then the take; inval.batched, DESIGN section 9).
   */
  private flushHeldLocked(start: number, end: number): Promise<void> | null {
    this.lock.assertHeld();
    const heldP2p = this.takeHeld(start, end);
    if (heldP2p.length === 0 && !this.flushOverlaps(start, end)) return null;
    return this.flushTakenLocked(start, end, heldP2p);
  }

  /** flushLocked with the p2p ranges held in [start, end) already taken (`heldP2p`). */
  private flushTakenLocked(start: number, end: number, heldP2p: readonly HeldRange[]): Promise<void> {
    const ranges = [{ start, end }];
    const iovas = this.iovaOf.take(Math.floor(start / PAGE_SIZE), Math.ceil(end / PAGE_SIZE));
    this.translated.cut(start, end);
    const inFlight = { start, end };
    this.flushesInFlight.push(inFlight);
    const dom = this.domain;
    if (dom && iovas.length > 0 && dom.devices.length === 1 && dom.devices[0].name === this.name) {
      for (const r of iovaRanges(iovas)) ranges.push(r);
      const acked = this.kernel.invalidator(this.name).invalidate(ranges, drainHook(dom, iovas));
      return this.afterAck(acked, ranges, iovas, heldP2p, inFlight, true);
    }
    return this.afterAck(this.kernel.invalidator(this.name).invalidate(ranges), ranges, iovas, heldP2p, inFlight);
  }

  /**
   * flushLocked's second half, once the device acked (`acked`): IOTLB
   * unmap and flush, then p2p_unmap; ends the flush (its `inFlight` entry
   * of flushesInFlight). One async function rather than a then/finally
   * chain: every promise hop is main-thread time on every revoke (inval.idle).
   */
  private async afterAck(acked: Promise<void>, ranges: readonly { start: number; end: number }[], iovas: readonly number[], heldP2p: readonly HeldRange[], inFlight: { start: number; end: number }, iotlbFlushed = false): Promise<void> {
    try {
      await acked;
      const dom = this.domain;
      if (dom && iotlbFlushed) {
        // The acked post held the IOVAs (drained): unmapped and released at once.
        for (const iova of iovas) dom.unmap(iova);
        dom.releaseUnmapped(ranges);
      } else if (dom) {
        dom.releaseUnmapped(ranges);
        // After the ack: the device no longer uses these IOVAs.
        for (const iova of iovas) dom.unmap(iova);
        await dom.flush(iovaRanges(iovas));
      }
      // p2p_unmap after the acks: the exporters may now reuse the slots without invalidating us.
      this.p2pUnmapAll(heldP2p);
    } finally {
      this.flushesInFlight.splice(this.flushesInFlight.indexOf(inFlight), 1);
    }
  }

  /* ---------------- fault service ---------------- */

  /** The fault server: the posted groups, those the device waits for first, then its prefetches, each oldest first (nextGroup); waits on the bell when none is. */
  protected async serve(): Promise<void> {
    while (!this.closed && !this.dev.handle.failed) {
      // The bell before the groups: a post after this load changes it, so the wait below returns at once.
      const bell = Atomics.load(this.pri, PriMailbox.bell);
      const g = nextGroup(this.groups, this.served);
      if (g < 0) {
        // Pairs with Atomics.store/notify(bell) in DeviceTlb.post.
        const w = Atomics.waitAsync(this.pri, PriMailbox.bell, bell, 250);
        if (w.async) await w.value;
        continue;
      }
      const seq = Atomics.load(this.groups[g], PageRequest.reqSeq);
      this.served[g] = seq;
      await this.serveOne(g, seq);
    }
  }

  private async serveOne(g: number, seq: number): Promise<void> {
    const t0 = performance.now();
    const p = this.groups[g];
    const start = loadU64(p, PageRequest.reqStart);
    let npages = p[PageRequest.reqPages];
    const write = p[PageRequest.reqWrite] === 1;
    const req = HMM_PFN_REQ_FAULT | (write ? HMM_PFN_REQ_WRITE : 0);
    // A window never crosses into another VMA, nor past an exporter's BAR budget.
    const vma = this.mm.findVma(start);
    if (vma) {
      npages = Math.min(npages, (vma.end - start) / PAGE_SIZE);
      if (vma.vmOps?.maxMapPages) npages = Math.min(npages, vma.vmOps.maxMapPages);
    }
    // The collision test covers the fault window only (an interval notifier
    // over it, as drivers insert per range): an invalidation elsewhere — e.g.
    // the exporter recycling other BAR slots inside this very p2pMap — does
    // not make the fault retry. Flushing stays with the binding's notifier.
    // The reply holds FAULT_WINDOW entries: a dense window is cut there, a sparse one after its FAULT_WINDOW-th asked page.
    const want = p[PageRequest.reqSparse] === 1 ? this.wanted(p, Math.min(npages, SPARSE_SPAN), req) : undefined;
    npages = want ? want.length : Math.min(npages, FAULT_WINDOW);
    const win = this.mm.notifiers.insert(start, npages * PAGE_SIZE, want ? sparseWindowOps(start, want) : windowOps, `${this.name} fault window`);
    const nseq = await win.readBegin();
    const range: HmmRange = { notifier: win, notifierSeq: nseq, start, end: start + npages * PAGE_SIZE, defaultFlags: want ? 0 : req, reqFlags: want, devPrivateOwner: this.devmem, importer: this.ref, pfns: new HmmPfns(npages) };
    let errno: 0 | Errno = 0;
    try {
      errno = await this.mmLocked(start, range.end, async () => {
        const r = await hmmRangeFault(this.mm, range);
        if (r !== 0 && r !== 'EBUSY') return r;
        await this.lock.lock();
        try {
          // Recorded even when the reply is EBUSY: the exporters hold slots for us now, and the next flush of the range releases them.
          this.recordHeld(range);
          if (r !== 0 || win.readRetry(nseq)) return 'EBUSY';
          this.fillReply(p, range, start);
          return 0;
        } finally {
          this.lock.unlock();
        }
      });
    } catch (e) {
      errno = e instanceof PeerVmaError ? e.code : 'EIO';
      range.error ??= e instanceof PeerVmaError ? e : new PeerVmaError('EIO', this.name, String(e));
    } finally {
      void win.remove(); // not awaited: nothing waits on a window that is done
    }
    // A bare EBUSY is a collision the device asks again for, not a refusal.
    if (errno !== 0 && (range.error || errno !== 'EBUSY')) this.refused(range, errno);
    else if (errno === 0) this.refusals.answered(range.start, range.end, want);
    this.reply(p, seq, errno, errno === 0 ? npages : 0);
    this.requests++;
    this.dev.shm.stats[DeviceStats.mapNs] += (performance.now() - t0) * 1e6;
    traceSink.w?.emit(TraceEvent.PageRequestServed, performance.timeOrigin + t0, performance.now() - t0, traceDev(this.name), range.start, npages, errno === 0 ? 0 : errnoCode(errno));
    this.onFault?.(errno, range.start, npages);
  }

  /**
   * Has the device translate [va, +len) now, before its first use (its
   * VaSpace.prefault: the page requests a fault makes, without read-ahead),
   * as a driver pre-populates its device's page table; returns the pages
   * faulted in. A refusal is a DeviceError with the device's message
   * (range, page, errno) and, when a refused page request is why, the
   * kernel's reason: the line of the refusal of that page with that errno
   * (refusals.reasonFor), so a refusal of another request in flight
   * meanwhile is not reported as this call's.
   */
  async prefault(va: number, len: number, write: boolean): Promise<number> {
    const r = await this.kernel.machine.race(this.dev.handle.cmd({ op: 'va-prefault', va, len, write }));
    if (r.errno === 0) return r.pages;
    throw new DeviceError(this.name, 'device-error', this.refusals.explain(r.message));
  }

  /** Logs a refused page request and keeps its line (refusals). */
  private refused(range: HmmRange, errno: Errno): void {
    const line = `${this.name}: page request [0x${range.start.toString(16)}, 0x${range.end.toString(16)}) refused: ${range.error?.message ?? errno}`;
    this.refusals.refused(range.start, range.end, errno, line);
    this.kernel.log.push(line);
  }

  /**
   * A sparse request's per-page request flags (hmm_pfns input): `req` for
   * the pages of its mask, 0 for the rest; the window ends at its
   * FAULT_WINDOW-th asked page (the reply's capacity), so it may come back
   * shorter than `npages`.
   */
  private wanted(p: Int32Array, npages: number, req: number): Uint8Array {
    const out = new Uint8Array(npages);
    for (let i = 0, asked = 0; i < npages; i++) {
      if (!pageAsked(p, i)) continue;
      out[i] = req;
      if (++asked === FAULT_WINDOW) return out.subarray(0, i + 1);
    }
    return out;
  }

  /**
   * Runs a fault at `va` under mmap_lock: shared when `va` lies in a
   * device-special VMA (the fault only asks its exporter, whose own lock
   * serialises it, so importers of different exporters fault side by side,
   * as under upstream's mmap_read_lock: camera-farm's eight cameras queued
   * behind one another's BAR recycling), exclusive otherwise (anonymous
   * faults allocate and migrate pages across awaits). The whole window
   * [va, end) is checked again once the lock is held: a munmap + mmap may
   * have replaced the VMA meanwhile, and anonymous pages must never be
   * walked under the shared lock.
   */
  private async mmLocked<T>(va: number, end: number, fn: () => Promise<T>): Promise<T> {
    const lock = this.mm.lock;
    const inDeviceVma = (): boolean => {
      const v = this.mm.findVma(va);
      return v?.kind === 'device' && end <= v.end;
    };
    if (inDeviceVma()) {
      await lock.readLock();
      try {
        if (inDeviceVma()) return await fn();
      } finally {
        lock.readUnlock();
      }
    }
    return this.mm.locked(fn);
  }

  /**
   * Notes what a fault hands out (lock held, before the reply): the whole
   * window in `translated`, and the p2p mappings it made: the window lies in
   * one VMA (serveOne clips it), so a device-special VMA is one range; in an
   * anonymous VMA, each run of a peer's device-private pages is one.
   */
  private recordHeld(range: HmmRange): void {
    this.lock.assertHeld();
    this.translated.add(this.translated, null, range.start, range.end);
    const vma = this.mm.findVma(range.start);
    if (!vma) return;
    const want = range.reqFlags;
    if (vma.kind === 'device') {
      if (!vma.vmOps?.p2pUnmap) return;
      // A sparse request mapped only its asked pages: each run of them is held.
      for (let i = 0, n = range.pfns.length; i < n; ) {
        if (want && want[i] === 0) {
          i++;
          continue;
        }
        let j = i + 1;
        while (j < n && !(want && want[j] === 0)) j++;
        this.addHeld({ vma, devmem: null, start: range.start + i * PAGE_SIZE, end: range.start + j * PAGE_SIZE });
        i = j;
      }
      return;
    }
    const { flags, mem: mems } = range.pfns;
    for (let i = 0; i < flags.length; ) {
      if ((flags[i] & HMM_PFN_P2P) === 0 || mems[i] < 0 || (want && want[i] === 0)) {
        i++;
        continue;
      }
      const mem = mems[i];
      let j = i + 1;
      while (j < flags.length && (flags[j] & HMM_PFN_P2P) !== 0 && mems[j] === mem && !(want && want[j] === 0)) j++;
      const devmem = this.kernel.devmem(this.kernel.machine.devices[mem].spec.name);
      this.addHeld({ vma: null, devmem, start: range.start + i * PAGE_SIZE, end: range.start + j * PAGE_SIZE });
      i = j;
    }
  }

  /** Adds a held range, merged with the ranges of the same target it overlaps or touches (src/drivers/held_ranges.ts). */
  private addHeld(h: HeldRange): void {
    this.p2pHeld.add(h.vma ?? h.devmem!, { vma: h.vma, devmem: h.devmem }, h.start, h.end);
  }

  /** p2p_unmap of each held range from its exporter (a VMA's vm_ops, or a peer's device memory). */
  private p2pUnmapAll(held: readonly HeldRange[]): void {
    for (const h of held) {
      if (h.vma) h.vma.vmOps?.p2pUnmap?.(h.vma, this.ref, h.start, h.end);
      else h.devmem!.p2pUnmap(this.ref, this.mm, h.start, h.end);
    }
  }

  /** Cuts [start, end) out of the held ranges (lock held); returns the parts cut, to unmap after the ack. */
  private takeHeld(start: number, end: number): HeldRange[] {
    return this.p2pHeld.take(start, end).map((p) => ({ vma: p.value.vma, devmem: p.value.devmem, start: p.start, end: p.end }));
  }

  /** Writes the translations into group `p` of the mailbox (lock held); a sparse request's asked pages only (no IOVA for the others), in order. */
  private fillReply(p: Int32Array, range: HmmRange, start: number): void {
    const pf = range.pfns;
    const want = range.reqFlags;
    for (let i = 0, k = 0; i < pf.length; i++) {
      if (want && want[i] === 0) continue;
      const vpn = start / PAGE_SIZE + i;
      let devAddr = pf.addr[i];
      if (this.domain && (pf.flags[i] & HMM_PFN_DEVICE_PRIVATE) === 0) devAddr = this.iovaFor(this.domain, vpn, pf.addr[i], (pf.flags[i] & HMM_PFN_WRITE) !== 0);
      // A sparse reply holds the asked pages' entries only, in order (src/shm/tlb_layout.ts).
      const w = PageRequest.entries + (want ? k++ : i) * ReplyEntry.kFieldCount;
      storeU64(p, w + ReplyEntry.devAddr, devAddr);
      p[w + ReplyEntry.flags] = pf.flags[i];
      p[w + ReplyEntry.gen] = pf.gen[i];
      p[w + ReplyEntry.mem] = pf.mem[i];
      p[w + ReplyEntry.page] = pf.page[i];
    }
  }

  /**
   * The IOVA a reply hands out for VA page `vpn` at bus address `bus`
   * (lock held). The page's IOVA from an earlier reply, when it still maps
   * `bus` for the same access: with several groups outstanding, that reply
   * may be installed after this one, or be in use already (a fault answered
   * first, then an overlapping prefetch). Else a new IOVA; the old one stays
   * mapped until the page's next invalidation, whose ack ends its use
   * (flushLocked takes every IOVA of the page). Unmapping it here made a
   * well-behaved device's DMA through the earlier reply an IOMMU fault: the
   * device was never told to stop using it.
   */
  private iovaFor(dom: IommuDomain, vpn: number, bus: number, write: boolean): number {
    const old = this.iovaOf.get(vpn);
    if (old >= 0 && dom.maps(old, bus, write)) return old;
    // Answered read-only, then for a write, then read-only again: the first IOVA serves again (at most one per access kind).
    let iova = -1;
    for (const o of this.iovaOf.olderOf(vpn)) if (dom.maps(o, bus, write)) iova = o;
    if (iova < 0) iova = dom.map(bus, write);
    this.iovaOf.replace(vpn, iova);
    return iova;
  }

  private reply(p: Int32Array, seq: number, errno: 0 | Errno, npages: number): void {
    p[PageRequest.replyErrno] = errno === 0 ? 0 : errnoCode(errno);
    p[PageRequest.replyPages] = npages;
    // Stored last: pairs with Atomics.load(replySeq) in DeviceTlb.fault.
    Atomics.store(p, PageRequest.replySeq, seq);
    ringWake(this.dev.shm.ctl);
  }

  protected cmd<O extends DeviceOp>(c: DeviceCmd<O>): Promise<DeviceOk<O>> {
    return deviceCmdOk(this.kernel.machine, this.dev, this.name, c, this.refusals);
  }
}

/** One IOTLB flush range per run of adjacent IOVA pages. */
function iovaRanges(iovas: readonly number[]): { start: number; end: number }[] {
  return coalesce(iovas.map((iova) => ({ start: iova, end: iova + PAGE_SIZE })), Infinity);
}
