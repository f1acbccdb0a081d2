/**
 * hmmRangeFault: snapshot or fault a range of a process address space for
 * a device, page by page, the way the device may use it.
 *
 * Mirrors mm/hmm.c: hmm_range_fault(), hmm_vma_walk_test() (no VMA /
 * unreadable VMA: EFAULT when a fault is required, HMM_PFN_ERROR for a
 * snapshot), hmm_pte_need_fault() (REQ_FAULT, REQ_WRITE on a read-only
 * PTE), hmm_vma_fault() (EPERM on a write to a read-only VMA),
 * hmm_vma_handle_pte() (device-private entries: the dev_private_owner gets
 * its own page directly; others fault, i.e. migrate it back; a
 * device-exclusive entry is not present to a snapshot), the -EBUSY
 * collision test with mmu_interval_check_retry(); plus the RFC's additions:
 * device-special VMAs go to vm_ops.p2pMap (patch 3/5), and a peer faulting
 * another device's private page gets the owner's peer address from the
 * devmem p2p callback when P2P is allowed (patch 4/5), else the fall-back
 * migration to RAM.
 *
 * Request flags per page: HMM_PFN_REQ_FAULT, HMM_PFN_REQ_WRITE (0 = snapshot).
 * Result flags: VALID, WRITE, ERROR, P2P (a peer bus address),
 * DEVICE_PRIVATE (a device-private page: the owner's own, or another
 * owner's when only snapshotting), ZERO (the shared zero page).
 *
 * Snapshot (no REQ_FAULT) of what cannot be shown: no VMA, an unreadable
 * VMA, a device-special VMA -> HMM_PFN_ERROR (hmm_vma_walk_hole,
 * hmm_vma_walk_test); not present -> 0. Request flags are read per page
 * everywhere (default_flags | hmm_pfns[i]).
 *
 * Errors (return value; details in range.error):
 *   EFAULT  no VMA / unreadable VMA asked to fault / device-special VMA
 *           without p2pMap or without an importer
 *   EPERM   write asked on a read-only VMA
 *   EBUSY   an invalidation collided (mmu_interval_check_retry): retry
 *   ENOMEM  no RAM to fault a page in
 *   any errno of the exporter's p2pMap (the whole sub-range is ERROR)
 * Caller holds mm.lock (mmap_read_lock) and took notifierSeq with readBegin.
 */
import { PeerVmaError, type Errno } from '../errors.js';
import { PAGE_SIZE } from '../shm/constants.js';
import type { DevMem } from './devmem.js';
import type { Mm } from './mm.js';
import type { IntervalNotifier } from './mmu_notifier.js';
import type { DeviceRef } from './kernel_types.js';
import type { Pte, Vma } from './vma.js';

import { HMM_PFN_DEVICE_PRIVATE, HMM_PFN_ERROR, HMM_PFN_P2P, HMM_PFN_REQ_FAULT, HMM_PFN_REQ_WRITE, HMM_PFN_VALID, HMM_PFN_WRITE, HMM_PFN_ZERO } from '../shm/hmm_pfn.js';

export { HMM_PFN_DEVICE_PRIVATE, HMM_PFN_ERROR, HMM_PFN_P2P, HMM_PFN_REQ_FAULT, HMM_PFN_REQ_WRITE, HMM_PFN_VALID, HMM_PFN_WRITE, HMM_PFN_ZERO };

/**
 * The answer, one entry per page (hmm_pfns[]: upstream packs pfn and flags
 * in one unsigned long per page; here each field is a typed array, filled
 * in place: no object per page).
 */
export class HmmPfns {
  /** HMM_PFN_* result flags (0: not present / not asked). */
  readonly flags: Int32Array;
  /** Bus address for RAM / P2P pages; byte offset in the owner's memory for its own private pages. */
  readonly addr: Float64Array;
  /** Generation of the target page when the entry was made (for the safety checker). */
  readonly gen: Int32Array;
  /** Target memory: -1 system RAM, else the device index. */
  readonly mem: Int32Array;
  /** Page index inside that memory (-1: none). */
  readonly page: Int32Array;

  constructor(readonly length: number) {
    this.flags = new Int32Array(length);
    this.addr = new Float64Array(length);
    this.gen = new Int32Array(length);
    this.mem = new Int32Array(length).fill(-1);
    this.page = new Int32Array(length).fill(-1);
  }

  /** Entry i. */
  set(i: number, flags: number, addr: number, gen: number, mem: number, page: number): void {
    this.flags[i] = flags;
    this.addr[i] = addr;
    this.gen[i] = gen;
    this.mem[i] = mem;
    this.page[i] = page;
  }

  /** Every entry back to "not present". */
  clear(): void {
    this.flags.fill(0);
    this.addr.fill(0);
    this.gen.fill(0);
    this.mem.fill(-1);
    this.page.fill(-1);
  }
}

/** Flags of a valid entry of kind `kind` (P2P, device-private, zero page, or 0 for plain RAM), writable when `write`. */
function validFlags(kind: number, write: boolean): number {
  return HMM_PFN_VALID | kind | (write ? HMM_PFN_WRITE : 0);
}

/** struct hmm_range. */
export interface HmmRange {
  readonly notifier: IntervalNotifier;
  readonly notifierSeq: number;
  readonly start: number;
  readonly end: number;
  /** Applied to every page (default_flags). */
  readonly defaultFlags: number;
  /** Per-page request flags, OR-ed with defaultFlags (hmm_pfns input). */
  readonly reqFlags?: Uint8Array;
  /** pgmap owner whose private pages this device uses directly. */
  readonly devPrivateOwner: DevMem | null;
  /** The device the translations are for (null: none — device-special VMAs then fail with EFAULT). */
  readonly importer: DeviceRef | null;
  /** Output, one entry per page (hmm_pfns); given by the caller, reallocated when its length does not match the range. */
  pfns: HmmPfns;
  /** Why it failed, for messages. */
  error?: PeerVmaError;
}

export async function hmmRangeFault(mm: Mm, range: HmmRange): Promise<0 | Errno> {
  mm.lock.assertHeld();
  const n = (range.end - range.start) / PAGE_SIZE;
  if (!Number.isInteger(n) || n <= 0 || range.start % PAGE_SIZE !== 0) return fail(range, 'EINVAL', mm.name, 'range empty or not page aligned');
  if (range.pfns.length === n) range.pfns.clear();
  else range.pfns = new HmmPfns(n);
  if (range.notifier.checkRetry(range.notifierSeq)) return 'EBUSY';
  for (let i = 0; i < n; ) {
    const va = range.start + i * PAGE_SIZE;
    const vma = mm.findVma(va);
    const req = reqOf(range, i);
    const fault = (req & HMM_PFN_REQ_FAULT) !== 0;
    if (!vma) {
      // hmm_vma_walk_hole() without a VMA: EFAULT if a fault is required, else HMM_PFN_ERROR.
      if (fault) return fail(range, 'EFAULT', whatOf(mm, range, va), 'no VMA');
      range.pfns.flags[i++] = HMM_PFN_ERROR;
      continue;
    }
    const i1 = (Math.min(vma.end, range.end) - range.start) / PAGE_SIZE;
    if (vma.kind !== 'device') {
      // The VMA's pages one by one (it cannot change meanwhile: mm.lock is held).
      const r = await walkAnonVma(mm, range, vma, i, i1);
      if (r !== 0) return r;
      i = i1;
      continue;
    }
    if (!vma.readable) {
      if (fault) return fail(range, 'EFAULT', whatOf(mm, range, va), `${vma} is not readable`);
      range.pfns.flags[i++] = HMM_PFN_ERROR;
      continue;
    }
    if ((req & HMM_PFN_REQ_WRITE) !== 0 && !vma.writable) return fail(range, 'EPERM', whatOf(mm, range, va), `write asked on read-only ${vma}`);
    const r = await walkDeviceVma(range, vma, i, i1, whatOf(mm, range, va));
    if (r !== 0) return r;
    i = i1;
  }
  if (range.notifier.checkRetry(range.notifierSeq)) return 'EBUSY';
  return 0;
}

/**
 * Request flags of page i (hmm_pfns[i] input OR default_flags). REQ_WRITE
 * means nothing without REQ_FAULT (hmm_pte_need_fault), so it is dropped.
 */
function reqOf(range: HmmRange, i: number): number {
  const req = range.defaultFlags | (range.reqFlags?.[i] ?? 0);
  return req & HMM_PFN_REQ_FAULT ? req & (HMM_PFN_REQ_FAULT | HMM_PFN_REQ_WRITE) : 0;
}

/**
 * Pages [i0, i1) of a device-special VMA, request flags honoured per page:
 * each run of pages asking the same (fault, write) goes to the exporter's
 * p2pMap (RFC 3/5); pages that ask no fault get HMM_PFN_ERROR, as
 * hmm_vma_walk_test() fills a VM_IO | VM_PFNMAP VMA for a snapshot (the
 * CPU page table has nothing to show for it). With per-page request flags
 * (a sparse request) and an exporter that has p2pMapRuns, the whole walk is
 * one list call instead (walkDeviceVmaRuns; `lists` false: its fall-back).
 */
async function walkDeviceVma(range: HmmRange, vma: Vma, i0: number, i1: number, what: string, lists = true): Promise<0 | Errno> {
  if (lists && range.reqFlags && vma.vmOps?.p2pMapRuns) return walkDeviceVmaRuns(range, vma, i0, i1, what);
  for (let i = i0; i < i1; ) {
    const req = reqOf(range, i);
    let j = i + 1;
    while (j < i1 && reqOf(range, j) === req) j++;
    if ((req & HMM_PFN_REQ_FAULT) === 0) {
      range.pfns.flags.fill(HMM_PFN_ERROR, i, j);
    } else {
      const write = (req & HMM_PFN_REQ_WRITE) !== 0;
      if (write && !vma.writable) return fail(range, 'EPERM', what, `write asked on read-only ${vma}`);
      const r = await faultDeviceVma(range, vma, range.start + i * PAGE_SIZE, range.start + j * PAGE_SIZE, i, write, what);
      if (r !== 0) return r;
    }
    i = j;
  }
  return 0;
}

/**
 * walkDeviceVma for a sparse request (per-page request flags, the holes of
 * a page request group): every run of pages asking a fault goes to the
 * exporter in one p2pMapRuns call, as hmm_range_fault fills the pfn array
 * of a whole range in one walk; pages asking none get HMM_PFN_ERROR. Runs
 * asking different (fault, write) flags take walkDeviceVma's run-by-run path.
 */
async function walkDeviceVmaRuns(range: HmmRange, vma: Vma, i0: number, i1: number, what: string): Promise<0 | Errno> {
  const runs: number[] = [];
  let req = 0;
  for (let i = i0; i < i1; ) {
    const r = reqOf(range, i);
    let j = i + 1;
    while (j < i1 && reqOf(range, j) === r) j++;
    if ((r & HMM_PFN_REQ_FAULT) === 0) range.pfns.flags.fill(HMM_PFN_ERROR, i, j);
    else if (req !== 0 && r !== req) return walkDeviceVma(range, vma, i0, i1, what, false);
    else {
      req = r;
      runs.push(i - i0, j - i0);
    }
    i = j;
  }
  if (runs.length === 0) return 0;
  const write = (req & HMM_PFN_REQ_WRITE) !== 0;
  if (write && !vma.writable) return fail(range, 'EPERM', what, `write asked on read-only ${vma}`);
  if (!range.importer) return fail(range, 'EFAULT', what, `${vma}: no importing device to map it for`);
  const m = await vma.vmOps!.p2pMapRuns!(vma, range.importer, range.start + i0 * PAGE_SIZE, i1 - i0, Int32Array.from(runs), write);
  if (!m.ok) {
    for (let r = 0; r < runs.length; r += 2) range.pfns.flags.fill(HMM_PFN_ERROR, i0 + runs[r], i0 + runs[r + 1]);
    return fail(range, m.errno, what, m.reason);
  }
  const flags = validFlags(HMM_PFN_P2P, write);
  for (let r = 0; r < runs.length; r += 2) for (let k = runs[r]; k < runs[r + 1]; k++) range.pfns.set(i0 + k, flags, m.bus[k], m.gens[k], m.mem, m.pages[k]);
  return 0;
}

async function faultDeviceVma(range: HmmRange, vma: Vma, start: number, end: number, i0: number, write: boolean, what: string): Promise<0 | Errno> {
  const ops = vma.vmOps!;
  if (!ops.p2pMap) return fail(range, 'EFAULT', what, `${vma}: the exporter has no p2p_map (not mappable by devices)`);
  if (!range.importer) return fail(range, 'EFAULT', what, `${vma}: no importing device to map it for`);
  const r = await ops.p2pMap(vma, range.importer, start, end, write);
  const n = (end - start) / PAGE_SIZE;
  if (!r.ok) {
    range.pfns.flags.fill(HMM_PFN_ERROR, i0, i0 + n);
    return fail(range, r.errno, what, r.reason);
  }
  const flags = validFlags(HMM_PFN_P2P, write);
  for (let k = 0; k < n; k++) range.pfns.set(i0 + k, flags, r.bus[k], r.gens[k], r.mem, r.pages[k]);
  return 0;
}

/** Names a page (and the importer) in errors; built only when one is reported. */
function whatOf(mm: Mm, range: HmmRange, va: number): string {
  return `hmm: 0x${va.toString(16)} in ${mm.name}${range.importer ? ' for ' + range.importer.name : ''}`;
}

/**
 * Pages [i0, i1) of one anonymous VMA (hmm_vma_walk_pmd's PTE loop): a run
 * of a peer's device-private pages goes to its owner in one devmem p2p
 * call; a PTE usable as it is is reported at once (no await, no object per
 * page); anything else goes through handleAnonPage, which faults or
 * migrates it first.
 */
async function walkAnonVma(mm: Mm, range: HmmRange, vma: Vma, i0: number, i1: number): Promise<0 | Errno> {
  for (let i = i0; i < i1; ) {
    const va = range.start + i * PAGE_SIZE;
    const req = reqOf(range, i);
    const fault = (req & HMM_PFN_REQ_FAULT) !== 0;
    const write = (req & HMM_PFN_REQ_WRITE) !== 0;
    if (!vma.readable) {
      if (fault) return fail(range, 'EFAULT', whatOf(mm, range, va), `${vma} is not readable`);
      range.pfns.flags[i++] = HMM_PFN_ERROR;
      continue;
    }
    if (write && !vma.writable) return fail(range, 'EPERM', whatOf(mm, range, va), `write asked on read-only ${vma}`);
    const pte = mm.pt.get(va / PAGE_SIZE);
    if (fault && pte?.kind === 'devprivate' && pte.devmem !== range.devPrivateOwner) {
      // A run of a peer's device-private pages is mapped with one devmem p2p call (one BAR mapping, one hold).
      const run = await mapPeerPrivateRun(mm, range, vma.end, va, i, write);
      if (run > 0) {
        i += run;
        continue;
      }
    }
    if (!reportPte(mm, range, pte, i, fault, write)) {
      const r = await handleAnonPage(mm, range, va, i, fault, write);
      if (r !== 0) return r;
    }
    i++;
  }
  return 0;
}

/**
 * Reports PTE `pte` as entry i when it can be used as it is (true), or
 * when there is nothing to report (a snapshot of a missing page); false
 * when the page must first be faulted in or migrated (handleAnonPage).
 * hmm_vma_handle_pte's cases that need no fault.
 */
function reportPte(mm: Mm, range: HmmRange, pte: Pte | undefined, i: number, fault: boolean, write: boolean): boolean {
  if (pte?.kind === 'devprivate') {
    const owner = pte.devmem;
    if (owner === range.devPrivateOwner) {
      // dev_private_owner rule: the owner uses its own page directly (a write to a read-only one migrates it first).
      if (fault && write && !pte.write) return false;
      range.pfns.set(i, validFlags(HMM_PFN_DEVICE_PRIVATE, pte.write), pte.page * PAGE_SIZE, Atomics.load(owner.gen, pte.page), owner.owner.index, pte.page);
      return true;
    }
    if (fault) return false;
    // Snapshot: report a peer's private page only if we could reach it.
    if (range.importer !== null && mm.kernel.p2pAllowed(owner.owner, range.importer).ok && owner.allowPeers) range.pfns.set(i, validFlags(HMM_PFN_DEVICE_PRIVATE, pte.write), 0, 0, owner.owner.index, pte.page);
    return true;
  }
  // A device-exclusive entry is a non-present swap entry upstream: a snapshot reports nothing (hmm_vma_handle_pte's
  // `if (!required_fault) goto out` with new_pfn_flags 0); a fault goes to handleAnonPage, which restores it.
  if (pte?.kind === 'ram' && pte.exclusive !== undefined) return !fault;
  if (pte?.kind === 'ram' && (!write || pte.write)) {
    range.pfns.set(i, validFlags(0, pte.write), pte.pfn * PAGE_SIZE, Atomics.load(mm.kernel.machine.shm.ramGen, pte.pfn), -1, pte.pfn);
    return true;
  }
  if (pte?.kind === 'zero' && !write) {
    const z = mm.kernel.zeroPfn;
    range.pfns.set(i, validFlags(HMM_PFN_ZERO, false), z * PAGE_SIZE, Atomics.load(mm.kernel.machine.shm.ramGen, z), -1, z);
    return true;
  }
  // Not present (or not writable) and only a snapshot: nothing to report.
  return !fault;
}

/**
 * Passes over one PTE before it is reported. Each pass either reports the
 * PTE or changes it once: a peer's device-private page migrates back to RAM
 * (pass 1), a missing, zero or read-only page is faulted in (pass 1 or 2),
 * and the next pass reports the RAM page. mm.lock is held throughout, so
 * nothing else changes the PTE meanwhile; needing a fourth pass would mean
 * a fault handler left the PTE unusable, and ends in EBUSY rather than a
 * loop.
 */
const ANON_PAGE_PASSES = 3;

async function handleAnonPage(mm: Mm, range: HmmRange, va: number, i: number, fault: boolean, write: boolean): Promise<0 | Errno> {
  const vpn = va / PAGE_SIZE;
  for (let pass = 0; pass < ANON_PAGE_PASSES; pass++) {
    const pte = mm.pt.get(vpn);
    if (reportPte(mm, range, pte, i, fault, write)) return 0;
    if (pte?.kind === 'devprivate') {
      const owner = pte.devmem;
      if (owner === range.devPrivateOwner) {
        // A write fault on our own page left read-only by an mprotect (raising
        // protection does not touch device-private entries): do_swap_page ->
        // migrate_to_ram, then the RAM path grants the write. Answering VALID
        // without WRITE instead made the device ask again forever (seen by
        // peervma stress: 574,500 page requests in 10 s).
        const r = await owner.migrateToRam(mm, va);
        if (r !== 0) return fail(range, r, whatOf(mm, range, va), 'migrating our own read-only private page back to RAM for a write failed');
        continue;
      }
      const p2pOk = range.importer !== null && mm.kernel.p2pAllowed(owner.owner, range.importer).ok && owner.allowPeers;
      if (p2pOk && (!write || pte.write)) {
        const m = await owner.p2pMap(pte.page, range.importer!, mm, va);
        if (m) {
          range.pfns.set(i, validFlags(HMM_PFN_P2P, write), m.bus, m.gen, owner.owner.index, pte.page);
          return 0;
        }
      }
      // The RFC's fall-back: migrate back to RAM, then map that.
      const r = await owner.migrateToRam(mm, va);
      if (r !== 0) return fail(range, r, whatOf(mm, range, va), 'migrating a peer-private page back to RAM failed');
      continue;
    }
    if (pte?.kind === 'ram' && pte.exclusive !== undefined) {
      // A device-exclusive entry asked to fault: hmm_vma_handle_pte faults it (the fault restores it).
      const r = await mm.handleMmFaultLocked(mm.findVma(va)!, va, write);
      if (r !== 0) return fail(range, r, whatOf(mm, range, va), 'restoring a device-exclusive page failed');
      continue;
    }
    const r = await mm.handleMmFaultLocked(mm.findVma(va)!, va, write);
    if (r !== 0) return fail(range, r, whatOf(mm, range, va), r === 'ENOMEM' ? 'out of system RAM' : 'fault failed');
  }
  // As a notifier collision: the caller retries the whole range (readBegin again).
  return 'EBUSY';
}

/**
 * The devmem p2p callback over a run: from `va`, the pages that are private
 * to one other device (not ours), reachable peer to peer, writable if
 * `write`, asked with the same flags, inside the VMA and the range, go to
 * the owner in one p2pMapRange call. Returns the pages filled, or 0 to
 * leave the first page to handleAnonPage (not such a page; refused: the
 * fall-back migration happens there).
 */
async function mapPeerPrivateRun(mm: Mm, range: HmmRange, vmaEnd: number, va: number, i0: number, write: boolean): Promise<number> {
  const vpn0 = va / PAGE_SIZE;
  const first = mm.pt.get(vpn0);
  if (first?.kind !== 'devprivate' || range.importer === null) return 0;
  const owner = first.devmem;
  if (owner === range.devPrivateOwner || !owner.allowPeers || (write && !first.write) || !mm.kernel.p2pAllowed(owner.owner, range.importer).ok) return 0;
  const req0 = range.reqFlags?.[i0] ?? 0;
  const max = Math.min((vmaEnd - va) / PAGE_SIZE, (range.end - va) / PAGE_SIZE);
  // The device pages are gathered in the scan: one page-table lookup per page (hmm-peer's NICs fault 512 at a time).
  const run: number[] = [first.page];
  for (let n = 1; n < max; n++) {
    const pte = mm.pt.get(vpn0 + n);
    if (pte?.kind !== 'devprivate' || pte.devmem !== owner || (write && !pte.write) || (range.reqFlags?.[i0 + n] ?? 0) !== req0) break;
    run.push(pte.page);
  }
  const n = run.length;
  if (n < 2) return 0; // one page: the per-page path does the same
  const pages = Int32Array.from(run);
  const m = await owner.p2pMapRange(pages, range.importer, mm, va);
  if (!m) return 0;
  const flags = validFlags(HMM_PFN_P2P, write);
  for (let k = 0; k < n; k++) range.pfns.set(i0 + k, flags, m.bus[k], m.gens[k], owner.owner.index, pages[k]);
  return n;
}

function fail(range: HmmRange, code: Errno, object: string, reason: string): Errno {
  range.error = new PeerVmaError(code, object, reason);
  return code;
}
