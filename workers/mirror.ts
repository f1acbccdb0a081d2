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
import { DeviceTlb, type TlbEntry } from './runtime/device_tlb.js';
import { IommuWalk } from './runtime/iommu_walk.js';

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

export function createMirror(ctx: DeviceContext): DeviceModel {
  const name = ctx.self.name;
  const mem = ctx.self.mem;
  if (!mem) throw new Error(`${name}: a mirror device needs local memory (bounce pages, device-private pages)`);
  let a: Attached | null = null;
  /** Entry and VA of the DMA in flight, for the checker. */
  let cur: { e: TlbEntry; va: number } | null = null;
  /** The DMA engine's translation before attach (restored at detach). */
  let prevTranslate = ctx.dma.translate;

  /** DmaEngine.onRun: compare the entry in use with the live tables. */
  function checkRun(run: BusRun, _addr: number, write: boolean): null {
    if (cur) a!.checker.checkRun(run, [cur.e], 0, cur.va, write);
    return null;
  }

  function attach(cmd: DeviceCmd<'attach'>): DeviceReply<'attach'> {
    if (a) return { errno: 'EBUSY', message: `${name}: already attached to a process (detach first)` };
    const tlb = new DeviceTlb(ctx.self, ctx.inv, new Int32Array(cmd.pri));
    prevTranslate = ctx.dma.translate;
    let walk: IommuWalk | null = null;
    if (cmd.iommu) {
      const w = (walk = new IommuWalk(cmd.iommu, ctx.self));
      ctx.dma.translate = w.translate;
      ctx.inv.addHook((s, e) => w.flush(s, e), 'iommu');
    }
    a = { tlb, walk, checker: new SafetyChecker(name, cmd.safety, (m) => ctx.logError(m)), check: cmd.check, bounceOff: cmd.bounceOff, bouncePages: cmd.bouncePages };
    if (a.check) ctx.dma.onRun = checkRun;
    return { errno: 0 };
  }

  /** Moves one page between the process (through the TLB) and bounce page `slot`. */
  function pageIo(e: TlbEntry, va: number, slot: number, write: boolean): string | null {
    const local = a!.bounceOff + slot * PAGE_SIZE;
    cur = { e, va };
    try {
      if (e.flags & HMM_PFN_DEVICE_PRIVATE) {
        // Our own device-private page: local memory, no bus.
        if (a!.check) a!.checker.checkLocal(ctx.self.memGen!, e, va, write);
        if (write) mem!.copyWithin(e.devAddr, local, local + PAGE_SIZE);
        else mem!.copyWithin(local, e.devAddr, e.devAddr + PAGE_SIZE);
        ctx.self.stats[DeviceStats.bytesLocal] += PAGE_SIZE;
        ctx.inv.check();
        return null;
      }
      return write ? ctx.dma.write(e.devAddr, local, PAGE_SIZE) : ctx.dma.read(e.devAddr, local, PAGE_SIZE);
    } finally {
      cur = null;
    }
  }

  function usable(e: TlbEntry | undefined, write: boolean): e is TlbEntry {
    return e !== undefined && (!write || (e.flags & HMM_PFN_WRITE) !== 0);
  }

  /**
   * dmirror_read() / dmirror_write(): [va, +npages) page by page through the
   * TLB; a missing (or, for a write, read-only) entry -> a dmirror_fault()
   * from that page on, then carry on (dmirror_do_read's -ENOENT loop). A WRITE
   * carries exactly npages pages of data: any other length is EINVAL, so no
   * byte of the bounce page that was not given can reach the target.
   */
  function rw(cmd: DeviceCmd<'read' | 'write'>): DeviceReply<'read' | 'write'> {
    if (!a) return { errno: 'EINVAL', message: `${name}: not attached to a process` };
    const write = cmd.op === 'write';
    const va0 = cmd.va;
    const npages = cmd.npages;
    if (!Number.isSafeInteger(va0) || va0 % PAGE_SIZE !== 0 || !Number.isSafeInteger(npages) || npages <= 0) return { errno: 'EINVAL', message: `${name}: range 0x${va0.toString(16)} +${npages} pages (page-aligned address, npages >= 1)` };
    const data = cmd.op === 'write' ? cmd.data : null;
    if (data && data.length !== npages * PAGE_SIZE) return { errno: 'EINVAL', message: `${name}: WRITE of ${npages} pages carries ${data.length} bytes, not ${npages * PAGE_SIZE}` };
    const out = write ? null : new Uint8Array(npages * PAGE_SIZE);
    const p0 = a.tlb.pagesFaulted;
    const r0 = a.tlb.faults;
    let faults = 0;
    const counters = () => ({ faults, requests: a!.tlb.faults - r0, pagesFaulted: a!.tlb.pagesFaulted - p0 });
    let refaults = 0;
    /**
     * Page where the running dmirror_fault() call goes on. test_hmm.c's
     * dmirror_fault() faults the whole rest of the range, 64 pages per
     * hmm_range_fault, before copying; here each window is faulted when the
     * copy reaches it (a BAR budget smaller than the range would otherwise
     * recycle the first windows before they are used), and a miss anywhere
     * else starts a new call: `faults` counts the same calls either way.
     */
    let next = -1;
    for (let i = 0; i < npages; ) {
      const va = va0 + i * PAGE_SIZE;
      const vpn = va / PAGE_SIZE;
      const e = a.tlb.lookup(vpn);
      if (!usable(e, write)) {
        if (refaults++ > 1000) return { errno: 'EBUSY', message: `${name}: 0x${va.toString(16)} kept being invalidated while faulted in`, cpages: i, ...counters() };
        if (i !== next) faults++;
        const r = a.tlb.fault(va, Math.min(MIRROR_FAULT_PAGES, npages - i), write);
        if (r !== 0) return { errno: r, message: `${name}: ${write ? 'WRITE' : 'READ'} of 0x${va.toString(16)} failed: ${r}`, cpages: i, ...counters() };
        // The reply may cover fewer pages (a window stops at a VMA's end or
        // at the exporter's BAR budget): the call goes on after them.
        let k = i + 1;
        while (k < npages && k < i + MIRROR_FAULT_PAGES && usable(a.tlb.lookup(vpn + k - i), write)) k++;
        next = k;
        continue;
      }
      const slot = i % a.bouncePages;
      const local = a.bounceOff + slot * PAGE_SIZE;
      if (write) mem!.set(data!.subarray(i * PAGE_SIZE, (i + 1) * PAGE_SIZE), local);
      const err = pageIo(e, va, slot, write);
      if (err !== null) {
        // An invalidation that landed mid-page dropped the entry: refault.
        if (a.tlb.lookup(vpn) !== e && refaults++ < 1000) continue;
        ctx.logError(err);
        return { errno: 'EIO', message: err, cpages: i, ...counters() };
      }
      if (out) out.set(mem!.subarray(local, local + PAGE_SIZE), i * PAGE_SIZE);
      if (next === i) next = i + 1; // the call faults the rest of the range, hits included
      i++;
    }
    return { errno: 0, data: out, cpages: npages, ...counters() };
  }

  return {
    execute(): CommandResult {
      return { status: CqStatus.InvalidOpcode, result: ctx.logError(`${name}: the mirror device takes commands through deviceCmd, not queues`) };
    },
    commands: {
      attach,
      read: rw,
      write: rw,
      counters: () => ({ errno: 0, requests: a?.tlb.faults ?? 0, pagesFaulted: a?.tlb.pagesFaulted ?? 0, retries: a?.tlb.retries ?? 0, tlb: a?.tlb.size ?? 0, iotlb: a?.walk?.iotlbSize ?? 0 }),
      detach: () => {
        // dmirror_fops_release(): the device file may be opened again
        // (by another process). The old TLB's invalidation hook stays
        // registered (InvalidationPort has no removal) but drops nothing
        // from an empty map.
        a?.tlb.clear();
        ctx.dma.translate = prevTranslate;
        ctx.dma.onRun = null;
        a = null;
        return { errno: 0 };
      },
    } satisfies CmdHandlers<keyof MirrorOps>,
  };
}
