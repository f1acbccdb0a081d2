/**
 * The mirror device, modelled on lib/test_hmm.c's dmirror: a device that
 * mirrors a process address space through its own device TLB, faulting
 * translations in from the kernel as needed, so tests (and users) can poke
 * at the semantics: READ / WRITE a range, with counters of faults and pages.
 * (MIGRATE_TO_DEV / MIGRATE_TO_SYS / SNAPSHOT are kernel work and live in
 * the driver, src/drivers/mirror_driver.ts, as they do in test_hmm.c.)
 *
 * Commands (DeviceEndpointApi.deviceCmd):
 *   attach   { pri, iommu, check, bounceOff, bouncePages }  once per open
 *   read     { va, npages }          -> { data, faults, requests, pagesFaulted, cpages }
 *   write    { va, npages, data }    -> { faults, requests, pagesFaulted, cpages }
 *            data is exactly npages pages (else EINVAL), as HMM_DMIRROR_WRITE
 *            copies npages pages from cmd->ptr
 *   faults = dmirror_fault() calls (one per miss, however many pages it
 *   faults in), requests = page requests to the kernel (64 pages each)
 *   counters {}                      -> { requests, pagesFaulted, retries, tlb, iotlb }
 *   detach   {}                      drops every translation
 *
 * Data path per page: device TLB (VA -> device address, made from a page
 * generation) -> DMA engine (IOMMU walk when attached with a domain ->
 * bus decode) -> bounce page in local memory. The DMA engine serves
 * invalidations after every run, so an invalidation waits for at most one
 * page of copying and the next page refaults.
 *
 * Safety checker (check mode): before each run is copied, the TLB entry in
 * use is compared with what the address decodes to now — another page
 * (Remapped) or the same page with another generation (StaleGeneration) —
 * and the violation is recorded in the SafetyLog SAB. The access itself is
 * not stopped: the checker reports what the hardware would have done.
 */
import { HMM_PFN_DEVICE_PRIVATE, HMM_PFN_WRITE } from '../src/shm/hmm_pfn.js';
import { PAGE_SIZE } from '../src/shm/constants.js';
import { DeviceStats } from '../src/shm/device_ctl.js';
import type { BusRun } from '../src/shm/bus_map.js';
import type { CommandResult } from './runtime/device_queues.js';
import { CqStatus } from '../src/shm/ring.js';

import { SafetyChecker } from './runtime/safety_check.js';
import type { CmdHandlers, DeviceCmd, DeviceReply, MirrorOps } from '../src/devices/protocol.js';
import type { DeviceContext, DeviceModel } from './runtime/device_model.js';
import { DeviceTlb, sameEntry, type TlbEntry } from './runtime/device_tlb.js';
import { IommuWalk } from './runtime/iommu_walk.js';
import { failedAt } from '../src/devices/va_failure.js';

/** Pages per page request: dmirror_fault() faults 64 pfns at a time. */
const MIRROR_FAULT_PAGES = 64;

interface Attached {
  readonly tlb: DeviceTlb;
  readonly walk: IommuWalk | null;
  readonly checker: SafetyChecker;
  readonly check: boolean;
  readonly bounceOff: number;
  readonly bouncePages: number;
}

/** One READ / WRITE in flight: its arguments and the counters its reply carries. */
interface RwCall {
  readonly write: boolean;
  readonly va0: number;
  readonly npages: number;
  /** The pages a WRITE carries (null for a READ). */
  readonly data: Uint8Array | null;
  /** The pages a READ returns (null for a WRITE). */
  readonly out: Uint8Array | null;
  /** tlb.pagesFaulted and tlb.faults at the start, for the deltas. */
  readonly p0: number;
  readonly r0: number;
  /** dmirror_fault() calls. */
  faults: number;
  /** Refaults after an invalidation; bounded so a range that keeps moving gives EBUSY. */
  refaults: number;
  /**
   * Page where the running dmirror_fault() call goes on. test_hmm.c's
   * dmirror_fault() faults the whole rest of the range, 64 pages per
   * hmm_range_fault, before copying; here each window is faulted when the
   * copy reaches it (a BAR budget smaller than the range would otherwise
   * recycle the first windows before they are used), and a miss anywhere
   * else starts a new call: `faults` counts the same calls either way.
   */
  next: number;
}

type RwReply = DeviceReply<'read' | 'write'>;

/** Refaults allowed per READ / WRITE before it gives up with EBUSY (or EIO after a DMA error). */
const MIRROR_MAX_REFAULTS = 1000;

function usable(e: TlbEntry | undefined, write: boolean): e is TlbEntry {
  return e !== undefined && (!write || (e.flags & HMM_PFN_WRITE) !== 0);
}

/**
 * The mirror device. Lifetime: one per worker, built by createMirror; the
 * attach state (`a`) lives from attach to detach, one process at a time
 * (dmirror_fops_open / _release).
 */
class Mirror implements DeviceModel {
  private readonly name: string;
  private readonly mem: Uint8Array;
  private a: Attached | null = null;
  /** Entry and VA of the DMA in flight, for the checker. */
  private cur: { e: TlbEntry; va: number } | null = null;
  /** The DMA engine's translation before attach (restored at detach). */
  private prevTranslate: DeviceContext['dma']['translate'];

  constructor(private readonly ctx: DeviceContext) {
    this.name = ctx.self.name;
    const mem = ctx.self.mem;
    if (!mem) throw new Error(`${this.name}: a mirror device needs local memory (bounce pages, device-private pages)`);
    this.mem = mem;
    this.prevTranslate = ctx.dma.translate;
  }

  execute(): CommandResult {
    return { status: CqStatus.InvalidOpcode, result: this.ctx.logError(`${this.name}: the mirror device takes commands through deviceCmd, not queues`) };
  }

  readonly commands = {
    attach: (cmd) => this.attach(cmd),
    read: (cmd) => this.rw(cmd),
    write: (cmd) => this.rw(cmd),
    counters: () => {
      const a = this.a;
      return { errno: 0, requests: a?.tlb.faults ?? 0, pagesFaulted: a?.tlb.pagesFaulted ?? 0, retries: a?.tlb.retries ?? 0, tlb: a?.tlb.size ?? 0, iotlb: a?.walk?.iotlbSize ?? 0 };
    },
    detach: () => this.detach(),
  } satisfies CmdHandlers<keyof MirrorOps>;

  /** DmaEngine.onRun: compare the entry in use with the live tables. */
  private readonly checkRun = (run: BusRun, _addr: number, write: boolean): null => {
    if (this.cur) this.a!.checker.checkRun(run, [this.cur.e], 0, this.cur.va, write);
    return null;
  };

  private attach(cmd: DeviceCmd<'attach'>): DeviceReply<'attach'> {
    const ctx = this.ctx;
    if (this.a) return { errno: 'EBUSY', message: `${this.name}: already attached to a process (detach first)` };
    const tlb = new DeviceTlb(ctx.self, ctx.inv, new Int32Array(cmd.pri), cmd.map ? new Int32Array(cmd.map) : null);
    this.prevTranslate = ctx.dma.translate;
    let walk: IommuWalk | null = null;
    if (cmd.iommu) {
      const w = (walk = new IommuWalk(cmd.iommu, ctx.self));
      ctx.dma.translate = w.translate;
      ctx.inv.addHook((s, e) => w.flush(s, e), 'iommu');
    }
    this.a = { tlb, walk, checker: new SafetyChecker(this.name, cmd.safety, (m) => ctx.logError(m)), check: cmd.check, bounceOff: cmd.bounceOff, bouncePages: cmd.bouncePages };
    if (this.a.check) ctx.dma.onRun = this.checkRun;
    return { errno: 0 };
  }

  /**
   * dmirror_fops_release(): the device file may be opened again (by another
   * process). The old TLB's invalidation hook stays registered
   * (InvalidationPort has no removal) but drops nothing from an empty map.
   */
  private detach(): DeviceReply<'detach'> {
    this.a?.tlb.clear();
    this.ctx.dma.translate = this.prevTranslate;
    this.ctx.dma.onRun = null;
    this.a = null;
    return { errno: 0 };
  }

  /** Moves one page between the process (through the TLB) and bounce page `slot`. */
  private pageIo(a: Attached, e: TlbEntry, va: number, slot: number, write: boolean): string | null {
    const ctx = this.ctx;
    const mem = this.mem;
    const local = a.bounceOff + slot * PAGE_SIZE;
    this.cur = { e, va };
    try {
      if (e.flags & HMM_PFN_DEVICE_PRIVATE) {
        // Our own device-private page: local memory, no bus.
        if (a.check) a.checker.checkLocal(ctx.self.memGen!, e, va, write);
        if (write) mem.copyWithin(e.devAddr, local, local + PAGE_SIZE);
        else mem.copyWithin(local, e.devAddr, e.devAddr + PAGE_SIZE);
        ctx.self.stats[DeviceStats.bytesLocal] += PAGE_SIZE;
        ctx.inv.check();
        return null;
      }
      return write ? ctx.dma.write(e.devAddr, local, PAGE_SIZE) : ctx.dma.read(e.devAddr, local, PAGE_SIZE);
    } finally {
      this.cur = null;
    }
  }

  /** The argument checks of READ / WRITE: a page-aligned range of >= 1 page; a WRITE's data exactly npages pages. */
  private checkArgs(cmd: DeviceCmd<'read' | 'write'>): RwReply | null {
    const { va, npages } = cmd;
    if (!Number.isSafeInteger(va) || va % PAGE_SIZE !== 0 || !Number.isSafeInteger(npages) || npages <= 0) return { errno: 'EINVAL', message: `${this.name}: range 0x${va.toString(16)} +${npages} pages (page-aligned address, npages >= 1)` };
    if (cmd.op === 'write' && cmd.data.length !== npages * PAGE_SIZE) return { errno: 'EINVAL', message: `${this.name}: WRITE of ${npages} pages carries ${cmd.data.length} bytes, not ${npages * PAGE_SIZE}` };
    return null;
  }

  private counters(a: Attached, c: RwCall): { faults: number; requests: number; pagesFaulted: number } {
    return { faults: c.faults, requests: a.tlb.faults - c.r0, pagesFaulted: a.tlb.pagesFaulted - c.p0 };
  }

  /**
   * dmirror_fault() from page i on (one page request of up to 64 pages);
   * null when the caller may look the page up again, else the error reply.
   */
  private faultFrom(a: Attached, c: RwCall, i: number): RwReply | null {
    const va = c.va0 + i * PAGE_SIZE;
    const vpn = va / PAGE_SIZE;
    if (c.refaults++ > MIRROR_MAX_REFAULTS) return { errno: 'EBUSY', message: `${this.name}: 0x${va.toString(16)} kept being invalidated while faulted in`, cpages: i, ...this.counters(a, c) };
    if (i !== c.next) c.faults++;
    const r = a.tlb.fault(va, Math.min(MIRROR_FAULT_PAGES, c.npages - i), c.write);
    // failedAt: the driver adds the kernel's line when a refused page request is why (MirrorDriver, PageRequestRefusals).
    if (r !== 0) return { errno: r, message: `${this.name}: ${c.write ? 'WRITE' : 'READ'} of 0x${c.va0.toString(16)} +${c.npages} pages ${failedAt(va, r)}`, cpages: i, ...this.counters(a, c) };
    // The reply may cover fewer pages (a window stops at a VMA's end or
    // at the exporter's BAR budget): the call goes on after them.
    let k = i + 1;
    while (k < c.npages && k < i + MIRROR_FAULT_PAGES && usable(a.tlb.lookup(vpn + k - i), c.write)) k++;
    c.next = k;
    return null;
  }

  /**
   * Copies page i through entry e (bounce page i % bouncePages): null when
   * done, 'refault' when an invalidation dropped the entry mid-page, else
   * the error reply.
   */
  private copyPage(a: Attached, c: RwCall, i: number, e: TlbEntry): RwReply | 'refault' | null {
    const va = c.va0 + i * PAGE_SIZE;
    const slot = i % a.bouncePages;
    const local = a.bounceOff + slot * PAGE_SIZE;
    if (c.data) this.mem.set(c.data.subarray(i * PAGE_SIZE, (i + 1) * PAGE_SIZE), local);
    const err = this.pageIo(a, e, va, slot, c.write);
    if (err !== null) {
      // An invalidation that landed mid-page dropped the entry: refault.
      if (!sameEntry(a.tlb.lookup(va / PAGE_SIZE), e) && c.refaults++ < MIRROR_MAX_REFAULTS) return 'refault';
      this.ctx.logError(err);
      return { errno: 'EIO', message: err, cpages: i, ...this.counters(a, c) };
    }
    if (c.out) c.out.set(this.mem.subarray(local, local + PAGE_SIZE), i * PAGE_SIZE);
    return null;
  }

  /**
   * dmirror_read() / dmirror_write(): [va, +npages) page by page through the
   * TLB; a missing (or, for a write, read-only) entry -> a dmirror_fault()
   * from that page on, then carry on (dmirror_do_read's -ENOENT loop). A WRITE
   * carries exactly npages pages of data: any other length is EINVAL, so no
   * byte of the bounce page that was not given can reach the target.
   */
  private rw(cmd: DeviceCmd<'read' | 'write'>): RwReply {
    const a = this.a;
    if (!a) return { errno: 'EINVAL', message: `${this.name}: not attached to a process` };
    const bad = this.checkArgs(cmd);
    if (bad) return bad;
    const write = cmd.op === 'write';
    const c: RwCall = {
      write,
      va0: cmd.va,
      npages: cmd.npages,
      data: cmd.op === 'write' ? cmd.data : null,
      out: write ? null : new Uint8Array(cmd.npages * PAGE_SIZE),
      p0: a.tlb.pagesFaulted,
      r0: a.tlb.faults,
      faults: 0,
      refaults: 0,
      next: -1,
    };
    // What the driver installed at a migration to us (dmirror_migrate_finalize_and_map) is in our table before we look.
    a.tlb.collectMap();
    for (let i = 0; i < c.npages; ) {
      const e = a.tlb.lookup(c.va0 / PAGE_SIZE + i);
      if (!usable(e, write)) {
        const err = this.faultFrom(a, c, i);
        if (err) return err;
        continue;
      }
      const r = this.copyPage(a, c, i, e);
      if (r === 'refault') continue;
      if (r) return r;
      if (c.next === i) c.next = i + 1; // the call faults the rest of the range, hits included
      i++;
    }
    return { errno: 0, data: c.out, cpages: c.npages, ...this.counters(a, c) };
  }
}

export function createMirror(ctx: DeviceContext): DeviceModel {
  return new Mirror(ctx);
}
