/**
 * Translations installed by the importer's driver when it submits a job,
 * with no page request: what a GPU driver without ATS/PRI does for the
 * buffers of a job (nouveau_svm / amdgpu_svm_range_validate_and_map):
 *
 *   wait until the device installed the previous post (one in the mailbox)
 *   seq = mmu_interval_read_begin(window)
 *   mmap_read_lock; hmm_range_fault(range)       (device-special VMA: p2p_map)
 *   driver lock; mmu_interval_read_retry(seq)?   -> an empty post (the device
 *                                                   faults as before)
 *   program the device page table: the post; unlock; wake the device
 *
 * Here the device page table is its TLB in the worker: the entries go into
 * the DriverMap mailbox (src/shm/driver_map_layout.ts), which the device
 * installs before it serves any invalidation and before its next page
 * request (DeviceTlb.collectMap); a job that names the post waits for it
 * (workers/runtime/map_fence.ts, the camera's CAM_ARG_MAP_SEQ). The camera
 * chain's driver maps a capture's buffer while the camera renders the
 * frame before it (src/workloads/camera_chain/submit_maps.ts).
 *
 * [Required: an invalidation overlapping the window after readBegin leaves
 *  no entry posted (the window notifier's seq, tested under the driver
 *  lock, which the importer's invalidate callback takes too); one after the
 *  post reaches the device after the post (main is one thread: postSeq is
 *  stored before the invalidation's post), and the device installs the
 *  post before it serves the invalidation, so the invalidation drops what
 *  was posted. What was mapped is recorded as held before the lock is
 *  released, even when nothing is posted (recordHeld, as a page request's
 *  EBUSY reply): the next flush of the range invalidates the device and
 *  releases it. releaseDropped gives mappings back with no invalidation
 *  only for translations the device dropped itself before completing the
 *  job that used them.]
 *
 * Every call posts once (entries, or an empty post when the map raced an
 * invalidation, the exporter refused, the range is not inside one
 * device-special VMA or exceeds MAP_PAGES), unless the device took no post
 * for MAILBOX_DEADLINE_MS or is gone. With the IOMMU on the binding gives
 * no target (the entries would need IOVAs of its domain).
 *
 * Threading: main thread only.
 */
import { PAGE_SIZE } from '../shm/constants.js';
import { DeviceStats } from '../shm/device_ctl.js';
import { DriverMap, MAP_PAGES } from '../shm/driver_map_layout.js';
import { storeU64 } from '../shm/layout.js';
import { ReplyEntry } from '../shm/tlb_layout.js';
import { HMM_PFN_REQ_FAULT, HMM_PFN_REQ_WRITE, HmmPfns, hmmRangeFault, type HmmRange } from '../kernel/hmm.js';
import type { Errno } from '../errors.js';
import type { DevMem } from '../kernel/devmem.js';
import type { DriverLock } from '../kernel/driver_lock.js';
import type { DeviceRef } from '../kernel/kernel_types.js';
import type { Mm } from '../kernel/mm.js';
import type { IntervalNotifierOps } from '../kernel/mmu_notifier.js';

/** What the importer's driver (ImporterBinding.submitMapTarget) lends a submission map. */
export interface SubmitMapTarget {
  readonly name: string;
  readonly mm: Mm;
  readonly importer: DeviceRef;
  readonly devmem: DevMem;
  /** The importer's driver lock (its invalidate callback takes it). */
  readonly lock: DriverLock;
  /** Its DriverMap mailbox. */
  readonly map: Int32Array;
  /** The device's stats (the map's time counts as kernel mapping, mapNs). */
  readonly stats: Float64Array;
  /** False once the binding is closed or the device failed. */
  live(): boolean;
  /** Wakes the device (a job waiting for the post: workers/runtime/map_fence.ts). */
  wake(): void;
  /** Records what hmmRangeFault mapped as held by the device (lock held): ImporterBinding.recordHeld. */
  recordHeld(range: HmmRange): void;
  /**
   * The device dropped every translation of [start, end) itself, before it
   * completed the job that used them (a job's end, in command order): the
   * driver gives the mappings back (p2p_unmap) with no invalidation.
   */
  releaseDropped(start: number, end: number): Promise<void>;
  /** Test seam: runs after the fault, before the driver lock (a racing invalidation goes here). */
  beforeLock?: (() => Promise<void> | void) | null;
}

/** Any invalidation of the window voids the post (mmu_interval_set_seq). */
const windowOps: IntervalNotifierOps = {
  invalidate(sub, _range, curSeq) {
    sub.setSeq(curSeq);
    return true;
  },
};

/** The most a map waits for the device to free the mailbox (a device that stopped taking posts: nothing is posted). */
export const MAILBOX_DEADLINE_MS = 5000;
const MAILBOX_SLICE_MS = 5;

/**
 * Maps [start, +npages) of a device-special VMA for the importer and posts
 * the translations into its DriverMap mailbox, once the device freed it
 * (the previous job's post installed). Posts exactly once: the entries, or
 * an empty post when they could not be made (a collision with an
 * invalidation, an exporter refusal, not one device-special VMA, too many
 * pages), so a job waiting for the post goes on (and faults). Returns the
 * pages posted, or -1 when nothing was posted (the device stopped taking
 * posts or died).
 */
export async function mapAtSubmit(t: SubmitMapTarget, start: number, npages: number, write: boolean, mailboxFree?: () => void): Promise<number> {
  const m = t.map;
  const end = start + npages * PAGE_SIZE;
  // First the device's install of the previous post (it then works on the job before this one): one post in the mailbox.
  if (!(await mailboxFreed(t))) return -1;
  mailboxFree?.();
  const t0 = performance.now();
  const win = t.mm.notifiers.insert(start, end - start, windowOps, `${t.name} submit map`);
  try {
    const seq = await win.readBegin();
    const range: HmmRange = { notifier: win, notifierSeq: seq, start, end, defaultFlags: HMM_PFN_REQ_FAULT | (write ? HMM_PFN_REQ_WRITE : 0), devPrivateOwner: t.devmem, importer: t.importer, pfns: new HmmPfns(npages) };
    const r = npages > 0 && npages <= MAP_PAGES ? await faultDeviceVma(t.mm, range) : 'EINVAL';
    await t.beforeLock?.();
    await t.lock.lock();
    try {
      // Held even when nothing is posted (as a page request's EBUSY reply): the next flush of the range releases the slots.
      if (r === 0 || r === 'EBUSY') t.recordHeld(range);
      if (!t.live() || !isFree(m)) return -1;
      const ok = r === 0 && !win.readRetry(seq);
      post(m, ok ? range : null);
      return ok ? npages : 0;
    } finally {
      t.lock.unlock();
      t.wake();
    }
  } finally {
    void win.remove();
    t.stats[DeviceStats.mapNs] += (performance.now() - t0) * 1e6;
  }
}

/** hmm_range_fault of a range inside one device-special VMA, under mmap_read_lock (it only asks the exporter: ImporterBinding.mmLocked). */
async function faultDeviceVma(mm: Mm, range: HmmRange): Promise<0 | Errno> {
  await mm.lock.readLock();
  try {
    const v = mm.findVma(range.start);
    if (v?.kind !== 'device' || range.end > v.end) return 'EFAULT';
    return await hmmRangeFault(mm, range);
  } finally {
    mm.lock.readUnlock();
  }
}

/** The device installed the last post (the mailbox holds one). */
function isFree(m: Int32Array): boolean {
  return Atomics.load(m, DriverMap.doneSeq) === Atomics.load(m, DriverMap.postSeq);
}

/** Waits until the device installed the previous post; false after MAILBOX_DEADLINE_MS or once the device is gone. */
async function mailboxFreed(t: SubmitMapTarget): Promise<boolean> {
  const m = t.map;
  const deadline = performance.now() + MAILBOX_DEADLINE_MS;
  for (;;) {
    const done = Atomics.load(m, DriverMap.doneSeq);
    if (done === Atomics.load(m, DriverMap.postSeq)) return true;
    if (!t.live() || performance.now() > deadline) return false;
    // Pairs with Atomics.notify(doneSeq) in collectDriverMap (workers/runtime/map_fence.ts); the slice covers a collect inside an invalidation, which does not notify.
    const w = Atomics.waitAsync(m, DriverMap.doneSeq, done, MAILBOX_SLICE_MS);
    if (w.async) await w.value;
  }
}

/** Writes the range's translations (null: none, an empty post) into the mailbox (driver lock held); postSeq last. */
function post(m: Int32Array, range: HmmRange | null): void {
  const pf = range?.pfns;
  const n = pf?.length ?? 0;
  for (let i = 0; i < n; i++) {
    const w = DriverMap.entries + i * ReplyEntry.kFieldCount;
    storeU64(m, w + ReplyEntry.devAddr, pf!.addr[i]);
    m[w + ReplyEntry.flags] = pf!.flags[i];
    m[w + ReplyEntry.gen] = pf!.gen[i];
    m[w + ReplyEntry.mem] = pf!.mem[i];
    m[w + ReplyEntry.page] = pf!.page[i];
  }
  storeU64(m, DriverMap.start, range?.start ?? 0);
  m[DriverMap.pages] = n;
  // Stored last: pairs with Atomics.load(postSeq) in DeviceTlb.collectMap and awaitDriverMap.
  Atomics.store(m, DriverMap.postSeq, (m[DriverMap.postSeq] + 1) | 0);
}
