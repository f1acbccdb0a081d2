/**
 * A device's view of the process it is bound to (the device half of
 * src/drivers/importer_binding.ts): DMA by process virtual address,
 * through the device TLB, faulting translations in through the
 * page-request mailbox, and obeying invalidation mid-transfer.
 *
 * A transfer is cut into runs of pages whose translations are contiguous
 * in device address space (copy runs, not pages: DESIGN.md section 3), and
 * each run is one DMA; the DMA engine serves invalidations between its 64
 * KiB chunks. If an invalidation drops an entry of the run in flight, the
 * next chunk is vetoed (onRun) and the run is redone after a refault:
 *
 *   device (VaSpace.io)                     kernel
 *   -------------------                     ------
 *   run = entries e0..ek (contiguous)
 *   DMA chunk 0 ... checkpoint:             invalidate [a, b) -> broadcast
 *     inv.check(): hook drops e_i in [a,b),
 *     marks the run dead, acks  ------------> ack received: old target reused
 *   onRun(next chunk): dead -> abort
 *   refault the range, redo the run
 *   [Required: after the ack, no chunk of the run touches the old target]
 *
 * Own device-private pages (HMM migrated to this device) are copied
 * locally, without the bus (the dev_private_owner rule).
 */
import { HMM_PFN_DEVICE_PRIVATE, HMM_PFN_WRITE } from '../../src/shm/hmm_pfn.js';
import type { BusRun } from '../../src/shm/bus_map.js';
import { PAGE_SIZE } from '../../src/shm/constants.js';
import { DeviceStats } from '../../src/shm/device_ctl.js';
import { FAULT_WINDOW } from '../../src/shm/tlb_layout.js';
import type { BindInfo, VaCounters } from '../../src/devices/protocol.js';
import type { DeviceCtxCore } from './device_ctx.js';
import { DeviceTlb, type TlbEntry } from './device_tlb.js';
import { INVALIDATED } from './dma_engine.js';
import { IommuWalk as IommuWalkImpl, type IommuWalk } from './iommu_walk.js';
import { SafetyChecker } from './safety_check.js';
import { TraceEvent, traceSink } from '../../src/shm/trace_ring.js';

/** A page request stops before this many pages in a row that the TLB still holds. */
const HELD_RUN_STOP = 16;

/** Refaults of one transfer before it is given up (a livelock guard, not a tuning knob). */
const MAX_REFAULTS = 10000;


interface Flight {
  readonly v0: number;
  readonly v1: number;
  readonly entries: readonly TlbEntry[];
  readonly va: number;
  readonly devAddr: number;
  dead: boolean;
}

export class VaSpace {
  readonly tlb: DeviceTlb;
  private readonly checker: SafetyChecker | null;
  private flight: Flight | null = null;
  /** Runs redone because an invalidation hit them mid-transfer. */
  refaults = 0;

  constructor(
    private readonly ctx: DeviceCtxCore,
    bind: BindInfo,
    /** The device's IOMMU walker (attachIommu), when its DMA is translated. */
    readonly walk: IommuWalk | null,
  ) {
    this.tlb = new DeviceTlb(ctx.self, ctx.inv, new Int32Array(bind.pri));
    ctx.inv.addHook((s, e) => this.hit(s, e), 'device');
    this.checker = bind.check ? new SafetyChecker(ctx.self.name, bind.safety, (m) => ctx.logError(m)) : null;
    ctx.dma.onRun = (run, addr, write) => this.onRun(run, addr, write);
    ctx.dma.killed = () => this.flight?.dead === true;
  }

  get counters(): VaCounters {
    return { faults: this.tlb.faults, pagesFaulted: this.tlb.pagesFaulted, retries: this.tlb.retries, refaults: this.refaults, tlb: this.tlb.size, iotlb: this.walk?.iotlbSize ?? 0 };
  }

  /**
   * Process memory [va, +len) -> local memory [localOff, +len). Null, or an
   * error naming device and address. `streamEnd`: the end of the whole
   * transfer this call is a burst of, so one page request covers up to
   * FAULT_WINDOW pages of it instead of one burst (an ATS-style range
   * request).
   */
  read(va: number, localOff: number, len: number, streamEnd = va + len): string | null {
    return this.io(va, localOff, len, false, streamEnd);
  }

  /** Local memory [localOff, +len) -> process memory [va, +len); `streamEnd` as for read. */
  write(va: number, localOff: number, len: number, streamEnd = va + len): string | null {
    return this.io(va, localOff, len, true, streamEnd);
  }

  detach(): void {
    this.tlb.clear();
  }

  private io(va: number, localOff: number, len: number, write: boolean, streamEnd: number): string | null {
    let done = 0;
    let redo = 0;
    while (done < len) {
      const cur = va + done;
      const vpn = Math.floor(cur / PAGE_SIZE);
      const e = this.tlb.lookup(vpn);
      if (!e || (write && (e.flags & HMM_PFN_WRITE) === 0)) {
        const last = Math.ceil(Math.max(va + len, streamEnd) / PAGE_SIZE);
        // Ask for the missing pages, holes and all, up to the first HELD_RUN_STOP entries in a row that we still hold:
        // a range taken back refaults just that range, while scattered revoked pages still go in one request.
        const cap = Math.min(FAULT_WINDOW, last - vpn);
        let n = 1;
        for (let k = 1, held = 0; k < cap; k++) {
          const x = this.tlb.lookup(vpn + k);
          if (!x || (write && (x.flags & HMM_PFN_WRITE) === 0)) {
            held = 0;
            n = k + 1;
          } else if (++held >= HELD_RUN_STOP) break;
        }
        const r = this.tlb.fault(vpn * PAGE_SIZE, n, write);
        if (r !== 0) return `${this.ctx.self.name}: ${write ? 'write to' : 'read of'} va 0x${cur.toString(16)} failed: ${r}`;
        continue;
      }
      const run = this.runFrom(vpn, cur, len - done, write);
      const err = this.move(run, localOff + done, write);
      if (err === INVALIDATED) {
        if (++redo > MAX_REFAULTS) return `${this.ctx.self.name}: va 0x${cur.toString(16)} invalidated ${MAX_REFAULTS} times in one transfer`;
        this.refaults++;
        traceSink.w?.instant(TraceEvent.RunRedone, cur, run.len);
        continue;
      }
      if (err !== null) return err;
      done += run.len;
    }
    return null;
  }

  /** Longest run from `vpn` whose entries are contiguous in device address space. */
  private runFrom(vpn: number, cur: number, left: number, write: boolean): { entries: TlbEntry[]; len: number; va: number } {
    const first = this.tlb.lookup(vpn)!;
    const entries = [first];
    let len = Math.min(left, PAGE_SIZE - (cur % PAGE_SIZE));
    const priv = first.flags & HMM_PFN_DEVICE_PRIVATE;
    while (len < left) {
      const prev = entries[entries.length - 1];
      const n = this.tlb.lookup(vpn + entries.length);
      if (!n || n.devAddr !== prev.devAddr + PAGE_SIZE || (n.flags & HMM_PFN_DEVICE_PRIVATE) !== priv || (write && (n.flags & HMM_PFN_WRITE) === 0)) break;
      entries.push(n);
      len = Math.min(left, len + PAGE_SIZE);
    }
    return { entries, len, va: cur };
  }

  private move(run: { entries: TlbEntry[]; len: number; va: number }, localOff: number, write: boolean): string | null {
    const e0 = run.entries[0];
    const devAddr = e0.devAddr + (run.va % PAGE_SIZE);
    if (e0.flags & HMM_PFN_DEVICE_PRIVATE) return this.moveLocal(run.entries, devAddr, run.va, localOff, run.len, write);
    const v0 = Math.floor(run.va / PAGE_SIZE);
    this.flight = { v0, v1: v0 + run.entries.length, entries: run.entries, va: run.va, devAddr: e0.devAddr, dead: false };
    try {
      return write ? this.ctx.dma.write(devAddr, localOff, run.len) : this.ctx.dma.read(devAddr, localOff, run.len);
    } finally {
      this.flight = null;
    }
  }

  /** Own device-private pages: local memory, no bus. */
  private moveLocal(entries: TlbEntry[], devAddr: number, va: number, localOff: number, len: number, write: boolean): null {
    const mem = this.ctx.self.mem!;
    if (this.checker) for (let i = 0; i < entries.length; i++) this.checker.checkLocal(this.ctx.self.memGen!, entries[i], (Math.floor(va / PAGE_SIZE) + i) * PAGE_SIZE, write);
    if (write) mem.copyWithin(devAddr, localOff, localOff + len);
    else mem.copyWithin(localOff, devAddr, devAddr + len);
    this.ctx.self.stats[DeviceStats.bytesLocal] += len;
    this.ctx.inv.check();
    return null;
  }

  /** Invalidation hook: a run in flight that loses an entry is dead. */
  private hit(start: number, end: number): void {
    const f = this.flight;
    if (f && start < f.v1 * PAGE_SIZE && f.v0 * PAGE_SIZE < end) f.dead = true;
  }

  /** DmaEngine.onRun: veto chunks of a dead run; check live ones. */
  private onRun(run: BusRun, addr: number, write: boolean): string | null {
    const f = this.flight;
    if (!f) return null;
    if (f.dead) return INVALIDATED;
    if (this.checker) {
      const k = Math.floor((addr - f.devAddr) / PAGE_SIZE);
      this.checker.checkRun(run, f.entries, k, f.v0 * PAGE_SIZE + k * PAGE_SIZE, write);
    }
    return null;
  }
}

/**
 * Puts a device's DMA behind its IOMMU domain: every address it DMAs to is
 * an IOVA, walked in the domain's page table; IOTLB flushes ride on the
 * invalidation broadcast, and run even for a device that ignores
 * invalidations (the IOTLB belongs to the IOMMU).
 */
export function attachIommu(ctx: DeviceCtxCore, domain: SharedArrayBuffer): IommuWalk {
  const w = new IommuWalkImpl(domain, ctx.self);
  ctx.dma.translate = w.translate;
  ctx.inv.addHook((s, e) => w.flush(s, e), 'iommu');
  return w;
}
