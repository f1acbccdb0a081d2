/**
 * A device's view of the process it is bound to (the device half of
 * src/drivers/importer_binding.ts): DMA by process virtual address,
 * through the device TLB, faulting translations in through the
 * page-request mailbox, and obeying invalidation mid-transfer.
 *
 * A transfer is cut into runs of pages whose translations are contiguous
 * in device address space (copy runs, not pages: DESIGN.md section 3), and
 * each run is one DMA (DmaEngine.transfer); the DMA engine serves
 * invalidations between its chunks and polls for them inside one. If an
 * invalidation drops an entry of the run in flight, the next chunk is
 * not started (DmaEngine.killed) and the run is redone after a refault:
 *
 *   device (VaSpace.io)                     kernel
 *   -------------------                     ------
 *   run = entries e0..ek (contiguous)
 *   DMA chunk 0 ... checkpoint:             invalidate [a, b) -> broadcast
 *     inv.check(): hook drops e_i in [a,b),
 *     marks the run dead, acks  ------------> ack received: old target reused
 *   killed() before the next chunk: dead -> abort
 *   refault the range, go on from where the run stopped (the bytes
 *   moved before the ack stand: they came from the old target while it
 *   was still the mapping's)
 *   [Required: after the ack, no chunk of the run touches the old target]
 *
 * Own device-private pages (HMM migrated to this device) are copied
 * locally, without the bus (the dev_private_owner rule).
 *
 * Along a stream, the next missing window is asked for as soon as one is
 * faulted in (DeviceTlb.prefetch), so the kernel maps it while this one is
 * copied. Nothing here allocates per page or per run: runs and safety
 * checks read the TLB's typed arrays in place, the flight is one object.
 */
import { HMM_PFN_DEVICE_PRIVATE } from '../../src/shm/hmm_pfn.js';
import { PAGE_SIZE } from '../../src/shm/constants.js';
import { DeviceStats } from '../../src/shm/device_ctl.js';
import { FAULT_WINDOW, SPARSE_SPAN, type ErrnoName } from '../../src/shm/tlb_layout.js';
import type { BindInfo, VaCounters } from '../../src/devices/protocol.js';
import { failedAt } from '../../src/devices/va_failure.js';
import type { DeviceCtxCore } from './device_ctx.js';
import { DeviceTlb } from './device_tlb.js';
import { Holes, skipHole } from './hole_skip.js';
import { INVALIDATED } from './dma_engine.js';
import type { GatherList } from './gather_list.js';
import { IommuWalk as IommuWalkImpl, type IommuWalk } from './iommu_walk.js';
import { SafetyChecker } from './safety_check.js';
import { attachVa } from './thread_machine.js';
import { START_LINE_DEADLINE_MS, StartLine } from '../../src/shm/start_line.js';
import { TraceEvent, traceSink } from '../../src/shm/trace_ring.js';

/** How far past a faulted window the next missing page is looked for, to be asked ahead. */
const AHEAD_SCAN = SPARSE_SPAN;

/** Refaults of one transfer before it is given up (a livelock guard, not a tuning knob). */
const MAX_REFAULTS = 10000;

/** The run in flight: VA pages [v0, v1) at device address devAddr (page aligned). One per VaSpace, reused. */
interface Flight {
  active: boolean;
  v0: number;
  v1: number;
  devAddr: number;
  dead: boolean;
}

export class VaSpace {
  readonly tlb: DeviceTlb;
  /** False once detach()ed: the process is no longer this device's. */
  bound = true;
  private readonly checker: SafetyChecker | null;
  private readonly flight: Flight = { active: false, v0: 0, v1: 0, devAddr: 0, dead: false };
  /** Runs redone because an invalidation hit them mid-transfer. */
  refaults = 0;
  /** The holes a read command copies last (hole_skip.ts). */
  private readonly holes = new Holes();
  /** The command in progress' passes' shared state (reset per command: nothing allocated per command). */
  private readonly st: CopyState = { busAddr: -1, redo: 0, va: 0, len: 0 };
  /** The read window a fault at vpn would ask for, made once (skipHole calls it per hole met). */
  private readonly readSpan = (vpn: number, cap: number): number => this.missingSpan(vpn, cap, false);

  constructor(
    private readonly ctx: DeviceCtxCore,
    bind: BindInfo,
    /** The device's IOMMU walker (attachIommu), when its DMA is translated. */
    readonly walk: IommuWalk | null,
  ) {
    this.tlb = new DeviceTlb(ctx.self, ctx.inv, new Int32Array(bind.pri), bind.map ? new Int32Array(bind.map) : null);
    ctx.inv.addHook((s, e) => this.hit(s, e), 'device');
    this.checker = bind.check ? new SafetyChecker(ctx.self.name, bind.safety, (m) => ctx.logError(m)) : null;
    // Long-lived call targets reaching this VaSpace, not closures of it: TurboFan inlines them (./thread_machine.ts).
    attachVa(ctx.dma, this);
  }

  /** DmaEngine.killed: the last checkpoint killed the run in flight. */
  get flightKilled(): boolean {
    return this.flight.dead;
  }

  get counters(): VaCounters {
    return { faults: this.tlb.faults, pagesFaulted: this.tlb.pagesFaulted, retries: this.tlb.retries, refaults: this.refaults, prefetchHits: this.tlb.prefetchHits, tlb: this.tlb.size, iotlb: this.walk?.iotlbSize ?? 0 };
  }

  /**
   * Process memory [va, +len) -> local memory [localOff, +len). Null, or an
   * error naming device and address. `streamEnd`: the end of the whole
   * transfer this call is a burst of, so one page request covers up to
   * FAULT_WINDOW missing pages of it (spread over at most SPARSE_SPAN)
   * instead of one burst (an ATS-style range request), and the next window
   * is asked for ahead (DeviceTlb.prefetch).
   */
  read(va: number, localOff: number, len: number, streamEnd = va + len): string | null {
    return this.io(va, localOff, len, false, streamEnd);
  }

  /** Local memory [localOff, +len) -> process memory [va, +len); `streamEnd` as for read. */
  write(va: number, localOff: number, len: number, streamEnd = va + len): string | null {
    return this.io(va, localOff, len, true, streamEnd);
  }

  /**
   * Translates [va, +len) ahead of its first use (a driver having its
   * device issue ATS translation requests for the buffers it was just
   * given, before the stream), through the same page requests a fault
   * makes (faultAt: each missing window is one sparse request), but
   * without its read-ahead: nothing is asked for that the range has not
   * reached yet, so each request is one window of the range.
   * Returns the pages faulted in, or a refusal naming the device, the
   * range, the page that failed and the kernel's errno. The entries are
   * ordinary TLB entries: any invalidation drops them as usual.
   */
  prefault(va: number, len: number, write: boolean): { pages: number } | { errno: ErrnoName; message: string } {
    const p0 = this.tlb.pagesFaulted;
    const end = Math.ceil((va + len) / PAGE_SIZE);
    for (let vpn = Math.floor(va / PAGE_SIZE); vpn < end; vpn++) {
      if (this.tlb.usable(vpn, write)) continue;
      const errno = this.faultAt(vpn, end, write, false);
      if (errno !== 0) return { errno, message: `${this.ctx.self.name}: prefault (${write ? 'write' : 'read'}) of va [0x${va.toString(16)}, 0x${(va + len).toString(16)}) ${failedAt(vpn * PAGE_SIZE, errno)}` };
    }
    return { pages: this.tlb.pagesFaulted - p0 };
  }

  /**
   * iommu_sva_unbind_device(): the binding is gone, so every later access
   * fails at once with EINVAL (faultAt) instead of posting page requests
   * no binding serves, and the device may be bound again ('bind-mm').
   */
  detach(): void {
    this.bound = false;
    this.tlb.clear();
  }

  /**
   * Waits at a start line (src/shm/start_line.ts): counts this device
   * ready, then sleeps until main says go, serving invalidations meanwhile
   * (a slice of at most 1 ms between two looks). Null, or an error naming
   * the device after START_LINE_DEADLINE_MS.
   */
  waitStart(line: Int32Array): string | null {
    const inv = this.ctx.inv;
    // Pairs with the waitAsync on ready in bench/dma_rig.ts's startTogether.
    Atomics.add(line, StartLine.ready, 1);
    Atomics.notify(line, StartLine.ready);
    const t0 = performance.now();
    while (Atomics.load(line, StartLine.go) === 0) {
      inv.check();
      if (performance.now() - t0 > START_LINE_DEADLINE_MS) return `${this.ctx.self.name}: va-stream: not released from its start line within ${START_LINE_DEADLINE_MS} ms`;
      Atomics.wait(line, StartLine.go, 0, inv.sleepBound(1));
    }
    return null;
  }

  /**
   * One command: runs of pages contiguous in device address space, each one
   * DmaEngine.transfer; timed and counted once (DmaEngine.finish), fault
   * waits left out of the DMA time (they are the device's faultWaitNs). A
   * read makes two passes (hole_skip.ts): the usable pages first, past the
   * holes it asked for, then the holes; each byte lands at its own offset.
   * An error in either pass ends the command (bytes past a failing hole may
   * already be copied: the command failed, its buffer is undefined).
   */
  private io(va: number, localOff: number, len: number, write: boolean, streamEnd: number): string | null {
    // One run token for the command's runs, given back before a page request and at the end (never held across a wait);
    // inside a device command that holds it across its bursts (NIC SEND), kept for the command's next burst.
    return this.ctx.dma.holding(len, () => this.runs(va, localOff, len, write, streamEnd));
  }

  /** io()'s body, inside the run token: the passes, then the command's one DmaEngine.finish (traced at the first run copied). */
  private runs(va: number, localOff: number, len: number, write: boolean, streamEnd: number): string | null {
    const stats = this.ctx.self.stats;
    const t0 = performance.now();
    const wait0 = stats[DeviceStats.faultWaitNs];
    // Reads copy past their holes first (workers/runtime/hole_skip.ts), then each hole.
    const holes = write ? null : this.holes;
    holes?.reset();
    const st = this.st;
    st.busAddr = -1;
    st.redo = 0;
    st.va = va;
    st.len = len;
    let err = this.copy(va, localOff, len, write, streamEnd, holes, st);
    for (let h = 0; err === null && holes !== null && h < holes.count; h++) err = this.copy(va + holes.off[h], localOff + holes.off[h], holes.len[h], write, streamEnd, null, st);
    if (err !== null) return err;
    const t1 = performance.now();
    this.ctx.dma.finish(t0, t1 - t0 - (stats[DeviceStats.faultWaitNs] - wait0) / 1e6, len, st.busAddr, write, t1 - t0);
    return null;
  }

  /** Copies [va, +len) run by run, faulting what is missing; with `holes`, skips the holes it may (skipHole) and notes them. */
  private copy(va: number, localOff: number, len: number, write: boolean, streamEnd: number, holes: Holes | null, st: CopyState): string | null {
    let done = 0;
    const cmdEnd = Math.ceil((va + len) / PAGE_SIZE);
    while (done < len) {
      const cur = va + done;
      const vpn = Math.floor(cur / PAGE_SIZE);
      if (!this.tlb.usable(vpn, write)) {
        const last = Math.ceil(Math.max(va + len, streamEnd) / PAGE_SIZE);
        const skip = holes === null ? 0 : skipHole(this.tlb, holes, vpn, cmdEnd, last, this.readSpan);
        if (skip > 0) {
          const n = (vpn + skip) * PAGE_SIZE - va - done; // skipHole leaves a usable page before cmdEnd
          holes!.add(done, n);
          done += n;
          continue;
        }
        this.ctx.dma.releaseToken();
        const err = this.faultAt(vpn, last, write);
        if (err !== 0) return `${this.ctx.self.name}: ${write ? 'write' : 'read'} of va [0x${st.va.toString(16)}, 0x${(st.va + st.len).toString(16)}) ${failedAt(cur, err)}`;
        continue;
      }
      const inPage = cur - vpn * PAGE_SIZE;
      const pages = this.tlb.runPages(vpn, Math.ceil((inPage + len - done) / PAGE_SIZE), write);
      const n = Math.min(len - done, pages * PAGE_SIZE - inPage);
      if (st.busAddr < 0) st.busAddr = this.tlb.devAddr(vpn) + inPage;
      const err = this.move(vpn, pages, inPage, localOff + done, n, write);
      if (err === INVALIDATED) {
        if (++st.redo > MAX_REFAULTS) return `${this.ctx.self.name}: va 0x${cur.toString(16)} invalidated ${MAX_REFAULTS} times in one transfer`;
        // The bytes moved before the kill stand (copied before the ack); the rest of the run is refaulted and redone.
        const moved = this.ctx.dma.moved;
        this.refaults++;
        traceSink.w?.instant(TraceEvent.RunRedone, cur + moved, n - moved);
        done += moved;
        continue;
      }
      if (err !== null) return err;
      done += n;
    }
    return null;
  }

  /**
   * Faults in the window from `vpn` (below page `last`) as one sparse
   * request (a page request group): it asks only for the pages we cannot
   * use, up to the last of them in the window, so the kernel maps just the
   * holes a revoke punched among pages we still hold. Then asks for the
   * next window's missing pages ahead (DeviceTlb.prefetch, sparse too),
   * whether they were never touched (a first-touch frontier) or dropped by
   * an invalidation (a stream cycling back over recycled pages), so the
   * kernel maps them while we copy instead of the device stalling window
   * by window. Without `ahead` (prefault), only the window.
   */
  private faultAt(vpn: number, last: number, write: boolean, ahead = true): 0 | ErrnoName {
    if (!this.bound) return 'EINVAL';
    const tlb = this.tlb;
    const n = this.missingSpan(vpn, Math.min(SPARSE_SPAN, last - vpn), write);
    const r = tlb.fault(vpn * PAGE_SIZE, n, write, true);
    if (r !== 0 || !ahead) return r;
    let next = vpn + n;
    const scanEnd = Math.min(last, vpn + n + AHEAD_SCAN);
    while (next < scanEnd && tlb.usable(next, write)) next++;
    if (next < scanEnd) tlb.prefetch(next * PAGE_SIZE, this.missingSpan(next, Math.min(SPARSE_SPAN, last - next), write), write, true);
    return 0;
  }

  /**
   * Pages from `vpn` (unusable) up to and including the last unusable one
   * of the next `cap` (at most SPARSE_SPAN), however many usable pages lie
   * between, and no further than the FAULT_WINDOW-th unusable one (what a
   * reply holds): a sparse request maps and installs only its mask's pages,
   * and only invalidations of those make it retry (DeviceTlb's race test
   * voids only the asked pages, racedPages; the kernel's sparse window
   * notifier), so a long window costs nothing
   * for the pages we hold, and one request takes every hole of it (cut at
   * 16 held pages in a row, a revoke storm's scattered holes took about
   * twice the page requests). A window with nothing held is a dense request
   * of at most FAULT_WINDOW pages.
   */
  private missingSpan(vpn: number, cap: number, write: boolean): number {
    let n = 1;
    for (let k = 1, missing = 1; k < cap && missing < FAULT_WINDOW; k++) {
      if (this.tlb.usable(vpn + k, write)) continue;
      n = k + 1;
      missing++;
    }
    return n;
  }

  /** Copies one run: VA pages [vpn, +pages), from `inPage` bytes into the first, `len` bytes. */
  private move(vpn: number, pages: number, inPage: number, localOff: number, len: number, write: boolean): string | null {
    const base = this.tlb.devAddr(vpn);
    if (this.tlb.flags(vpn) & HMM_PFN_DEVICE_PRIVATE) return this.moveLocal(vpn, pages, base + inPage, localOff, len, write);
    const f = this.flight;
    f.active = true;
    f.dead = false;
    f.v0 = vpn;
    f.v1 = vpn + pages;
    f.devAddr = base;
    try {
      return this.ctx.dma.transfer(base + inPage, localOff, len, write);
    } finally {
      f.active = false;
      f.dead = false;
    }
  }

  /** Own device-private pages: local memory, no bus. */
  private moveLocal(vpn: number, pages: number, devAddr: number, localOff: number, len: number, write: boolean): null {
    const mem = this.ctx.self.mem!;
    if (this.checker) for (let k = 0; k < pages; k++) this.checker.checkLocalTlb(this.ctx.self.memGen!, this.tlb, vpn + k, write);
    if (write) mem.copyWithin(devAddr, localOff, localOff + len);
    else mem.copyWithin(localOff, devAddr, devAddr + len);
    this.ctx.self.stats[DeviceStats.bytesLocal] += len;
    this.ctx.inv.check();
    return null;
  }

  /** Invalidation hook: a run in flight that loses an entry is dead. */
  private hit(start: number, end: number): void {
    const f = this.flight;
    if (f.active && start < f.v1 * PAGE_SIZE && f.v0 * PAGE_SIZE < end) f.dead = true;
  }

  /**
   * DmaEngine.onGather: check the runs of a step against the TLB entries
   * in use. (A dead run needs no veto here: DmaEngine.killed stops it
   * before its next step, and nothing kills it inside a step.)
   */
  onGather(runs: GatherList, write: boolean): void {
    const f = this.flight;
    if (f.active && this.checker) this.checker.checkTlbGather(runs, this.tlb, f.v0, f.devAddr, write);
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

/** What a command's passes share: the bus address of its first run copied (the trace's), its runs redone (MAX_REFAULTS is per command), and its range (an error names it: a hole's pass copies only part). */
interface CopyState {
  busAddr: number;
  redo: number;
  va: number;
  len: number;
}
