/**
 * The device-side half of the IOMMU: walks the domain's page table in SAB
 * (src/shm/iommu_layout.ts) and keeps this device's IOTLB.
 *
 * Mirrors the hardware page walk of an IOMMU (intel-iommu second-level
 * translation) and its fault reporting (report_iommu_fault: device, IOVA,
 * access). The IOTLB is flushed through InvalidationPort hooks owned by
 * 'iommu', which run even for a rogue device (invIgnore): the IOTLB belongs
 * to the IOMMU, not to the device.
 *
 * Invariants:
 * - `fenced` is loaded on every translation (hit or miss), so a fenced
 *   domain blocks at once, whatever the IOTLB holds;
 * - a PTE's perm is loaded with Atomics before its pfn and drainSeq
 *   (pairs with IommuDomain.map/drain's store order in src/kernel/iommu.ts);
 * - a draining PTE (IOMMU_DRAIN) is walked only while this device has not
 *   acked the post drainSeq (our own invAck): that post flushes the IOVA
 *   from the IOTLB, so nothing walked before it outlives its ack.
 */
import { hex } from '../../src/shm/bus_map.js';
import { PAGE_SIZE } from '../../src/shm/constants.js';
import { DeviceCtl } from '../../src/shm/device_ctl.js';
import { IOMMU_DRAIN, IOMMU_READ, IOMMU_WRITE, IOVA_BASE, IommuDomainHdr, IommuPte, iommuPteWord } from '../../src/shm/iommu_layout.js';
import { storeU64 } from '../../src/shm/layout.js';
import type { DeviceShm } from '../../src/shm/phys_mem.js';
import type { Translate } from './dma_engine.js';
import { TraceEvent, traceSink } from '../../src/shm/trace_ring.js';

/** Why a walk failed (walk's result), or WALK_OK. */
const WALK_OK = 0;
const WALK_NOT_MAPPED = 1;
const WALK_DRAINED = 2;

export class IommuWalk {
  private readonly view: Int32Array;
  private readonly nPages: number;
  /**
   * The IOTLB, direct-mapped by IOVA page: the cached pfn and perm
   * (IOMMU_READ | IOMMU_WRITE; 0 = no entry). Typed arrays, not a Map of
   * objects: one lookup per translated page of every DMA run.
   */
  private readonly tlbPfn: Int32Array;
  private readonly tlbPerm: Uint8Array;
  private cached = 0;

  constructor(
    sab: SharedArrayBuffer,
    private readonly self: DeviceShm,
  ) {
    this.view = new Int32Array(sab);
    this.nPages = this.view[IommuDomainHdr.nPages];
    this.tlbPfn = new Int32Array(this.nPages);
    this.tlbPerm = new Uint8Array(this.nPages);
  }

  get iotlbSize(): number {
    return this.cached;
  }

  /**
   * Translates the run at IOVA `addr`: as far as `len` goes through IOVA
   * pages that map consecutive bus pages with the access allowed (each
   * page walked or found in the IOTLB, as a per-page translation would),
   * so the DMA engine copies a run per call, not a page.
   */
  readonly translate: Translate = (addr, len, write) => {
    if (Atomics.load(this.view, IommuDomainHdr.fenced) === 1) return this.fault(addr, write, 'the device is fenced off its IOMMU domain');
    const i = Math.floor((addr - IOVA_BASE) / PAGE_SIZE);
    if (i < 0 || i >= this.nPages) return this.fault(addr, write, 'outside the IOVA space');
    const why = this.lookup(i);
    if (why === WALK_NOT_MAPPED) return this.fault(addr, write, 'IOVA not mapped');
    if (why === WALK_DRAINED) return this.fault(addr, write, 'IOVA being unmapped, its IOTLB flush acked');
    if (write && (this.tlbPerm[i] & IOMMU_WRITE) === 0) return this.fault(addr, write, 'IOVA mapped read-only');
    const off = addr - IOVA_BASE - i * PAGE_SIZE;
    const pfn = this.tlbPfn[i];
    let n = PAGE_SIZE - off;
    // A page that cannot extend the run is left for the next call, which reports its fault.
    for (let j = i + 1; n < len && j < this.nPages; j++) {
      if (this.lookup(j) !== WALK_OK || this.tlbPfn[j] !== pfn + (j - i) || (write && (this.tlbPerm[j] & IOMMU_WRITE) === 0)) break;
      n += PAGE_SIZE;
    }
    const out = this.out;
    out.addr = pfn * PAGE_SIZE + off;
    out.len = Math.min(len, n);
    return out;
  };

  /** What translate() returns (reused: its caller reads it at once; no object per run). */
  private readonly out = { addr: 0, len: 0 };

  /** IOVA page `i` in the IOTLB, walking the page table on a miss (no fault recorded: translate reports it). */
  private lookup(i: number): number {
    if (this.tlbPerm[i] !== 0) return WALK_OK;
    const v = this.view;
    const w = iommuPteWord(i);
    const perm = Atomics.load(v, w + IommuPte.perm);
    if (perm === 0) return WALK_NOT_MAPPED;
    // Pairs with IommuDomain.drain (drainSeq stored before perm); our own invAck, stored by this thread.
    if ((perm & IOMMU_DRAIN) !== 0 && ((Atomics.load(this.self.ctl, DeviceCtl.invAck) - v[w + IommuPte.drainSeq]) | 0) >= 0) return WALK_DRAINED;
    this.tlbPfn[i] = v[w + IommuPte.pfn];
    this.tlbPerm[i] = perm & (IOMMU_READ | IOMMU_WRITE);
    this.cached++;
    return WALK_OK;
  }

  /** IOTLB flush of [start, end) (an InvalidationPort hook owned by 'iommu'). */
  flush(start: number, end: number): void {
    if (this.cached === 0) return;
    const p0 = Math.max(Math.floor((start - IOVA_BASE) / PAGE_SIZE), 0);
    const p1 = Math.min(Math.ceil((end - IOVA_BASE) / PAGE_SIZE), this.nPages);
    const perm = this.tlbPerm;
    for (let k = p0; k < p1; k++) {
      if (perm[k] !== 0) {
        perm[k] = 0;
        this.cached--;
      }
    }
  }

  private fault(iova: number, write: boolean, why: string): { fault: string } {
    const v = this.view;
    storeU64(v, IommuDomainHdr.lastFaultIova, iova);
    Atomics.store(v, IommuDomainHdr.lastFaultWrite, write ? 1 : 0);
    Atomics.store(v, IommuDomainHdr.lastFaultDevice, this.self.index);
    Atomics.add(v, IommuDomainHdr.faultCount, 1);
    traceSink.w?.instant(TraceEvent.IommuFault, iova, write ? 1 : 0);
    return { fault: `IOMMU fault: device ${this.self.name}, IOVA ${hex(iova)}, ${write ? 'write' : 'read'} access: ${why}` };
  }
}
