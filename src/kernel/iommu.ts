/**
 * The IOMMU: one domain per device (per IOMMU group), IOVA -> bus address
 * page tables in SAB that device workers walk themselves, IOTLBs that live
 * in the workers, and the flush-before-reuse rule.
 *
 * Mirrors drivers/iommu: iommu_domain_alloc(), iommu_attach_device(),
 * iommu_map()/iommu_unmap(), iommu_iotlb_sync() (here a broadcast
 * invalidation of the IOVA range to every device of the domain, acked like
 * any other), report_iommu_fault() (the worker records device, IOVA and
 * access in the domain header; src/shm/iommu_layout.ts has the protocol).
 *
 *   unmap(iova)                     ->  PTE perm := 0
 *   flush()                         ->  IOTLB flush broadcast, wait for acks
 *   only then: the IOVA returns to the allocator, the page may be reused
 *   or, one-device domain (ImporterBinding.flushLocked):
 *   drain(iova, S) just before post S  ->  walks end at the ack of S, which
 *   carries the IOVA (its IOTLB flush); then unmap + releaseUnmapped
 *   [Required: no IOVA is handed out again while a device may still hold
 *    it in its IOTLB]
 *
 * Fencing: a device that does not ack an invalidation in time is cut off:
 * `fenced` := 1 in its domain header, which the walk checks on every
 * translation, IOTLB hit or not.
 */
import { PeerVmaError } from '../errors.js';
import { PAGE_SIZE } from '../shm/constants.js';
import { IOMMU_DRAIN, IOMMU_READ, IOMMU_WRITE, IOVA_BASE, IommuDomainHdr, IommuPte, iommuDomainWords, iommuPteWord } from '../shm/iommu_layout.js';
import { loadU64 } from '../shm/layout.js';
import { coalesce, type DeviceInvalidator, type InvRange } from './invalidate_broadcast.js';
import type { DeviceRef } from './kernel_types.js';

/** IOVA pages per domain (1 GiB of IOVA space). */
export const IOVA_PAGES = 1 << 18;

export interface IommuFaultInfo {
  readonly count: number;
  readonly iova: number;
  readonly write: boolean;
  readonly device: number;
}

export class IommuDomain {
  readonly sab: SharedArrayBuffer;
  private readonly view: Int32Array;
  /** guarded by: main thread. Next never-used IOVA page, and freed ones ready for reuse. */
  private nextPage = 0;
  private freeList: number[] = [];
  /** FIFO head into freeList (shift() is O(n), and the list holds up to IOVA_PAGES entries). */
  private freeHead = 0;
  /** Unmapped, not yet flushed: may still sit in an IOTLB. */
  private readonly pendingFree: number[] = [];
  mapped = 0;

  constructor(
    readonly name: string,
    readonly devices: DeviceRef[],
    private readonly invalidators: () => DeviceInvalidator[],
  ) {
    this.sab = new SharedArrayBuffer(iommuDomainWords(IOVA_PAGES) * 4);
    this.view = new Int32Array(this.sab);
    this.view[IommuDomainHdr.nPages] = IOVA_PAGES;
  }

  /** The oldest flushed IOVA page, or IOVA_PAGES when none (ENOSPC below). */
  private takeOldestFree(): number {
    if (this.freeHead >= this.freeList.length) return IOVA_PAGES;
    const i = this.freeList[this.freeHead++];
    if (this.freeHead > 4096 && this.freeHead * 2 > this.freeList.length) {
      this.freeList = this.freeList.slice(this.freeHead);
      this.freeHead = 0;
    }
    return i;
  }

  /** iommu_map() of one page: returns the IOVA the device must use. */
  map(bus: number, write: boolean): number {
    if (bus % PAGE_SIZE !== 0) throw new PeerVmaError('EINVAL', this.name, `iommu_map of unaligned bus address 0x${bus.toString(16)}`);
    // Fresh IOVA space first, then the oldest freed IOVA (FIFO), as late as
    // possible (Linux defers reuse through its flush queue): a device that
    // kept a stale IOVA in its own TLB then meets an unmapped PTE (an IOMMU
    // fault, contained) and not, yet, a page mapped for someone else.
    const i = this.nextPage < IOVA_PAGES ? this.nextPage++ : this.takeOldestFree();
    if (i >= IOVA_PAGES) throw new PeerVmaError('ENOSPC', this.name, `IOVA space of ${IOVA_PAGES} pages exhausted`);
    const w = iommuPteWord(i);
    this.view[w + IommuPte.pfn] = bus / PAGE_SIZE;
    // Stored last: pairs with Atomics.load(perm) in IommuWalk.walk.
    Atomics.store(this.view, w + IommuPte.perm, IOMMU_READ | (write ? IOMMU_WRITE : 0));
    this.mapped++;
    return IOVA_BASE + i * PAGE_SIZE;
  }

  /**
   * Maps the pages of [bus, bus + len) at consecutive IOVAs (as
   * dma_map_single() / dma_map_resource() give a device one contiguous
   * range); returns the IOVA of `bus`. Streaming mappings for the life of a
   * run: taken from never-used IOVA space.
   */
  mapRange(bus: number, len: number, write: boolean): number {
    const first = bus - (bus % PAGE_SIZE);
    const npages = Math.ceil((bus + len - first) / PAGE_SIZE);
    if (this.nextPage + npages > IOVA_PAGES) throw new PeerVmaError('ENOSPC', this.name, `IOVA space of ${IOVA_PAGES} pages exhausted mapping ${npages} pages`);
    const i0 = this.nextPage;
    this.nextPage += npages;
    for (let k = 0; k < npages; k++) {
      const w = iommuPteWord(i0 + k);
      this.view[w + IommuPte.pfn] = first / PAGE_SIZE + k;
      // Stored last: pairs with Atomics.load(perm) in IommuWalk.walk.
      Atomics.store(this.view, w + IommuPte.perm, IOMMU_READ | (write ? IOMMU_WRITE : 0));
    }
    this.mapped += npages;
    return IOVA_BASE + i0 * PAGE_SIZE + (bus - first);
  }

  /**
   * Marks a mapped IOVA as being unmapped by the invalidation the device
   * gets as post `seq` (called just before that post, which holds the
   * IOVA): the device may still walk it until it acks `seq` (DMA in flight
   * before it saw the invalidation), never after (src/shm/iommu_layout.ts).
   * unmap() follows after the ack.
   */
  drain(iova: number, seq: number): void {
    const w = iommuPteWord(this.index(iova));
    const perm = Atomics.load(this.view, w + IommuPte.perm);
    if (perm === 0 || (perm & IOMMU_DRAIN) !== 0) return;
    this.view[w + IommuPte.drainSeq] = seq;
    // Stored last: pairs with Atomics.load(perm) in IommuWalk.translate.
    Atomics.store(this.view, w + IommuPte.perm, perm | IOMMU_DRAIN);
  }

  /**
   * drain() of each of `iovas` that `batch` covers (post `seq` about to go
   * out); returns the others, for a later post of the same round trip.
   */
  drainCovered(iovas: readonly number[], batch: readonly InvRange[], seq: number): number[] {
    const rs = coalesce(batch, Infinity);
    const rest: number[] = [];
    for (const iova of iovas) {
      if (covered(rs, iova)) this.drain(iova, seq);
      else rest.push(iova);
    }
    return rest;
  }

  /**
   * Does `iova` map bus address `bus` with exactly the access `write` asks
   * (not draining)? A page request answered again for a page whose IOVA
   * still maps it hands out that IOVA (ImporterBinding.iovaFor).
   */
  maps(iova: number, bus: number, write: boolean): boolean {
    const w = iommuPteWord(this.index(iova));
    return Atomics.load(this.view, w + IommuPte.perm) === (IOMMU_READ | (write ? IOMMU_WRITE : 0)) && this.view[w + IommuPte.pfn] === bus / PAGE_SIZE;
  }

  /** iommu_unmap() without the flush: the IOVA is not reusable until flush(). */
  unmap(iova: number): void {
    const i = this.index(iova);
    // Stored first: pairs with Atomics.load(perm) in IommuWalk.walk.
    Atomics.store(this.view, iommuPteWord(i) + IommuPte.perm, 0);
    this.pendingFree.push(i);
    this.mapped--;
  }

  /**
   * After an IOTLB flush of `flushed` was acked: the unmapped IOVAs inside
   * those ranges become reusable. Unmapped IOVAs outside them stay pending:
   * an IOTLB may still hold them, and reusing one would hand its old page
   * to whoever gets the IOVA next.
   */
  releaseUnmapped(flushed: readonly { start: number; end: number }[]): void {
    const pending = this.pendingFree;
    if (pending.length === 0 || flushed.length === 0) return;
    // Sorted, disjoint ranges: one binary search per pending page (a flush
    // of thousands of pages against its ranges was quadratic).
    const rs = coalesce(flushed, Infinity);
    let kept = 0;
    for (let k = 0; k < pending.length; k++) {
      const i = pending[k];
      if (covered(rs, IOVA_BASE + i * PAGE_SIZE)) this.freeList.push(i);
      else pending[kept++] = i;
    }
    pending.length = kept;
  }

  /** iommu_iotlb_sync(): flush [iova, +len) from every IOTLB of the domain, then release what it covered. */
  async flush(ranges: { start: number; end: number }[]): Promise<void> {
    if (ranges.length === 0) return;
    // A fenced domain's walk refuses every access, so no IOTLB entry can be
    // used again; waiting on a device that already missed an ack deadline
    // would only time out a second time (and count it twice).
    if (this.fenced) return this.releaseUnmapped(ranges);
    await Promise.all(this.invalidators().map((inv) => inv.invalidate(ranges)));
    this.releaseUnmapped(ranges);
  }

  fence(): void {
    Atomics.store(this.view, IommuDomainHdr.fenced, 1);
  }

  get fenced(): boolean {
    return Atomics.load(this.view, IommuDomainHdr.fenced) === 1;
  }

  /** The fault record the workers keep (report_iommu_fault). */
  faults(): IommuFaultInfo {
    const v = this.view;
    return {
      count: Atomics.load(v, IommuDomainHdr.faultCount),
      iova: loadU64(v, IommuDomainHdr.lastFaultIova),
      write: Atomics.load(v, IommuDomainHdr.lastFaultWrite) === 1,
      device: Atomics.load(v, IommuDomainHdr.lastFaultDevice),
    };
  }

  private index(iova: number): number {
    const i = (iova - IOVA_BASE) / PAGE_SIZE;
    if (!Number.isInteger(i) || i < 0 || i >= this.nextPage) throw new PeerVmaError('EINVAL', this.name, `IOVA 0x${iova.toString(16)} was never mapped`);
    return i;
  }
}

/** Whether `addr` lies in one of `rs` (sorted, disjoint: coalesce). */
function covered(rs: readonly InvRange[], addr: number): boolean {
  let lo = 0;
  let hi = rs.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (rs[mid].end <= addr) lo = mid + 1;
    else hi = mid;
  }
  return lo < rs.length && rs[lo].start <= addr;
}
