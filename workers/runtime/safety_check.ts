/**
 * The safety checker's device half (DESIGN.md section 6): every DMA run a
 * device makes through a device-TLB entry is compared with what the
 * address decodes to now. A different page (BAR slot recycled, IOVA
 * remapped) is a Remapped violation; the same page with another
 * generation (freed and reused) is a StaleGeneration violation. Violations
 * go to the binding's SafetyLog SAB, which the kernel reads
 * (src/kernel/safety.ts). The access itself is not stopped: the checker
 * reports what the hardware would have done.
 */
import type { BusRun } from '../../src/shm/bus_map.js';
import { PAGE_SHIFT, PAGE_SIZE } from '../../src/shm/constants.js';
import { storeU64 } from '../../src/shm/layout.js';
import { SafetyLog, VIOLATION_RECORDS, ViolationKind, ViolationRecord } from '../../src/shm/tlb_layout.js';
import type { DeviceTlb, TlbEntry } from './device_tlb.js';
import type { GatherList } from './gather_list.js';

export class SafetyChecker {
  private readonly log: Int32Array;

  constructor(
    private readonly device: string,
    safety: SharedArrayBuffer,
    private readonly report: (message: string) => void,
  ) {
    this.log = new Int32Array(safety);
  }

  /**
   * A bus run made through `entries[first..]` (one per page, the first for
   * virtual page `va`): every page the run covers is compared with the
   * live tables, not only the first.
   */
  checkRun(run: BusRun, entries: readonly TlbEntry[], first: number, va: number, write: boolean): void {
    if (!run.gen || run.target === 'regs') return;
    const mem = run.target === 'ram' ? -1 : run.owner;
    const p0 = Math.floor(run.offset / PAGE_SIZE);
    const p1 = Math.floor((run.offset + run.len - 1) / PAGE_SIZE);
    for (let page = p0; page <= p1; page++) {
      const k = first + (page - p0);
      const e = entries[k];
      const live = Atomics.load(run.gen, page);
      const pva = va + (page - p0) * PAGE_SIZE;
      if (!e || mem !== e.mem || page !== e.page) this.record(ViolationKind.Remapped, e ?? entries[entries.length - 1], pva, live, write);
      else if (live !== e.gen) this.record(ViolationKind.StaleGeneration, e, pva, live, write);
    }
  }

  /**
   * The same check for the runs of one DMA gather step, made through the
   * device TLB's entries (read in place: no entry objects per page), in
   * one call per step, not per run (workers/runtime/gather_list.ts). Run i
   * was reached through device address runs.addr[i], inside the TLB run
   * whose first page is virtual page `vpn0` at device address `devAddr0`.
   */
  checkTlbGather(runs: GatherList, tlb: DeviceTlb, vpn0: number, devAddr0: number, write: boolean): void {
    const gen = runs.gen;
    if (!gen || runs.target === 'regs') return;
    const mem = runs.target === 'ram' ? -1 : runs.owner;
    // Offsets and device-address distances fit 32 bits (a memory is one typed array, at most 2^32 bytes on Node 20; a TLB run lies in one transfer): shifts, not floors.
    for (let i = 0; i < runs.n; i++) {
      const off = runs.offset[i];
      const p0 = off >>> PAGE_SHIFT;
      const count = ((off + runs.len[i] - 1) >>> PAGE_SHIFT) - p0 + 1;
      const vpn = vpn0 + ((runs.addr[i] - devAddr0) >>> PAGE_SHIFT);
      if (count === 1) {
        // A one-page run (every run over scattered backing): one entry test, no run loop.
        const live = Atomics.load(gen, p0);
        const kind = tlb.verify(vpn, mem, p0, live);
        if (kind !== 0) this.reportTlb(kind, tlb, vpn, live, write);
        continue;
      }
      // Fast path: one pass over the run; page by page only from the first mismatch on, to record each.
      for (let k = tlb.verifyRun(vpn, count, mem, p0, gen); k >= 0 && k < count; k++) {
        const live = Atomics.load(gen, p0 + k);
        const kind = tlb.verify(vpn + k, mem, p0 + k, live);
        if (kind !== 0) this.reportTlb(kind, tlb, vpn + k, live, write);
      }
    }
  }

  private reportTlb(kind: ViolationKind, tlb: DeviceTlb, v: number, live: number, write: boolean): void {
    this.recordAt(kind, v * PAGE_SIZE, tlb.usable(v, false) ? tlb.devAddr(v) : 0, tlb.gen(v), live, write);
  }

  /** An access to the device's own private page through the TLB entry of `vpn`. */
  checkLocalTlb(gen: Int32Array, tlb: DeviceTlb, vpn: number, write: boolean): void {
    const live = Atomics.load(gen, tlb.page(vpn));
    if (live !== tlb.gen(vpn)) this.recordAt(ViolationKind.StaleGeneration, vpn * PAGE_SIZE, tlb.devAddr(vpn), tlb.gen(vpn), live, write);
  }

  /** An access to the device's own private page through entry `e`. */
  checkLocal(gen: Int32Array, e: TlbEntry, va: number, write: boolean): void {
    const live = Atomics.load(gen, e.page);
    if (live !== e.gen) this.record(ViolationKind.StaleGeneration, e, va, live, write);
  }

  private record(kind: ViolationKind, e: TlbEntry, va: number, liveGen: number, write: boolean): void {
    this.recordAt(kind, va, e.devAddr, e.gen, liveGen, write);
  }

  private recordAt(kind: ViolationKind, va: number, devAddr: number, entryGen: number, liveGen: number, write: boolean): void {
    const s = this.log;
    const n = Atomics.add(s, SafetyLog.count, 1);
    const w = SafetyLog.records + (n % VIOLATION_RECORDS) * ViolationRecord.kFieldCount;
    s[w + ViolationRecord.kind] = kind;
    storeU64(s, w + ViolationRecord.va, va);
    storeU64(s, w + ViolationRecord.devAddr, devAddr);
    s[w + ViolationRecord.entryGen] = entryGen;
    s[w + ViolationRecord.liveGen] = liveGen;
    s[w + ViolationRecord.write] = write ? 1 : 0;
    this.report(`${this.device}: safety: ${kind === ViolationKind.Remapped ? 'remapped' : 'stale-generation'} access to va 0x${va.toString(16)} through device address 0x${devAddr.toString(16)} (entry gen ${entryGen}, live ${liveGen})`);
  }
}
