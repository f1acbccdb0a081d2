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

interface IotlbEntry {
  readonly pfn: number;
  readonly perm: number;
}

export class IommuWalk {
  private readonly view: Int32Array;
  private readonly iotlb = new Map<number, IotlbEntry>();
  private readonly nPages: number;

  constructor(
    sab: SharedArrayBuffer,
    private readonly self: DeviceShm,
  ) {
    this.view = new Int32Array(sab);
    this.nPages = this.view[IommuDomainHdr.nPages];
  }

  get iotlbSize(): number {
    return this.iotlb.size;
  }

  readonly translate: Translate = (addr, len, write) => {
    const v = this.view;
    if (Atomics.load(v, IommuDomainHdr.fenced) === 1) return this.fault(addr, write, 'the device is fenced off its IOMMU domain');
    const i = Math.floor((addr - IOVA_BASE) / PAGE_SIZE);
    let e = this.iotlb.get(i);
    if (!e) {
      if (i < 0 || i >= this.nPages) return this.fault(addr, write, 'outside the IOVA space');
      const w = iommuPteWord(i);
      const perm = Atomics.load(v, w + IommuPte.perm);
      if (perm === 0) return this.fault(addr, write, 'IOVA not mapped');
      // Pairs with IommuDomain.drain (drainSeq stored before perm); our own invAck, stored by this thread.
      if ((perm & IOMMU_DRAIN) !== 0 && ((Atomics.load(this.self.ctl, DeviceCtl.invAck) - v[w + IommuPte.drainSeq]) | 0) >= 0) {
        return this.fault(addr, write, 'IOVA being unmapped, its IOTLB flush acked');
      }
      e = { pfn: v[w + IommuPte.pfn], perm: perm & (IOMMU_READ | IOMMU_WRITE) };
      this.iotlb.set(i, e);
    }
    if (write && (e.perm & IOMMU_WRITE) === 0) return this.fault(addr, write, 'IOVA mapped read-only');
    const off = (addr - IOVA_BASE) % PAGE_SIZE;
    const out = this.out;
    out.addr = e.pfn * PAGE_SIZE + off;
    out.len = Math.min(len, PAGE_SIZE - off);
    return out;
  };

  /** What translate() returns (reused: its caller reads it at once; no object per page). */
  private readonly out = { addr: 0, len: 0 };

  /** IOTLB flush of [start, end) (an InvalidationPort hook owned by 'iommu'). */
  flush(start: number, end: number): void {
    const p0 = Math.floor((start - IOVA_BASE) / PAGE_SIZE);
    const p1 = Math.ceil((end - IOVA_BASE) / PAGE_SIZE);
    if (p1 - p0 > this.iotlb.size) {
      for (const k of this.iotlb.keys()) if (k >= p0 && k < p1) this.iotlb.delete(k);
    } else {
      for (let k = Math.max(p0, 0); k < p1; k++) this.iotlb.delete(k);
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
