/**
 * A job's wait for the page-table update its driver made when it
 * submitted the job (a GPU job's dependency on its VM update fence, e.g.
 * amdgpu_vm_update_range's fence in the job's sync object): the driver
 * posts the job's translations into the DriverMap mailbox
 * (src/drivers/submit_map.ts) and names, in the command, the post's
 * sequence; the device waits until that post is there, installs it
 * (DeviceTlb.collectMap) and starts with no page request. A post may be
 * empty (the driver could not map: the device faults as before).
 *
 *   device (awaitDriverMap)                 main (mapAtSubmit)
 *   -----------------------                 ------------------
 *   loop: seen = load(ctl.wake)             map, wait for doneSeq == postSeq
 *         inv.check()   <- acks the         lock; readRetry? -> empty post
 *           revokes the map itself needs    write entries; store(postSeq)
 *         postSeq - seq >= 0: break         ringWake(device ctl)
 *         Atomics.wait(ctl.wake, seen)
 *   (each pass: collectMap(); notify(doneSeq) when it installed one)
 *                                   -----> the mailbox is free for the next job's post
 *
 * The wait serves invalidations (the driver's map may recycle BAR slots
 * this device holds, and waits for its ack), and gives up after
 * FENCE_DEADLINE_MS: the device then faults what it needs (always correct;
 * the driver's post, whenever it comes, is installed like any other).
 *
 * Threading: the device worker only.
 */
import { DeviceCtl, DeviceStats } from '../../src/shm/device_ctl.js';
import { DriverMap } from '../../src/shm/driver_map_layout.js';
import type { DeviceCtxCore } from './device_ctx.js';
import type { DeviceTlb } from './device_tlb.js';

/** How long a job waits for its driver's post before it faults instead (a kernel that never posts is a bug, not a hang). */
export const FENCE_DEADLINE_MS = 5000;
const WAIT_SLICE_MS = 20;

/**
 * Waits until post `seq` (or a later one) is in `map`, serving
 * invalidations, then installs it; true when it came, false after
 * FENCE_DEADLINE_MS. The wait counts as fault wait (faultWaitNs).
 */
export function awaitDriverMap(ctx: DeviceCtxCore, tlb: DeviceTlb, map: Int32Array, seq: number): boolean {
  const ctl = ctx.self.ctl;
  const t0 = performance.now();
  let came = true;
  for (;;) {
    const seen = Atomics.load(ctl, DeviceCtl.wake);
    ctx.inv.check();
    // Each post as it comes: one the driver made for an earlier capture frees the mailbox for ours.
    collectDriverMap(tlb, map);
    // Pairs with Atomics.store(postSeq) + ringWake in mapAtSubmit (wrap-safe compare).
    if (((Atomics.load(map, DriverMap.postSeq) - seq) | 0) >= 0) break;
    if (performance.now() - t0 > FENCE_DEADLINE_MS) {
      came = false;
      break;
    }
    Atomics.wait(ctl, DeviceCtl.wake, seen, ctx.inv.sleepBound(WAIT_SLICE_MS));
  }
  collectDriverMap(tlb, map);
  ctx.self.stats[DeviceStats.faultWaitNs] += (performance.now() - t0) * 1e6;
  return came;
}

/** Installs a post in the mailbox, if any, and tells the driver the mailbox is free (it may be waiting to post the next job's). */
export function collectDriverMap(tlb: DeviceTlb, map: Int32Array): void {
  const done = Atomics.load(map, DriverMap.doneSeq);
  tlb.collectMap();
  // Pairs with the waitAsync on doneSeq in mapAtSubmit (src/drivers/submit_map.ts).
  if (Atomics.load(map, DriverMap.doneSeq) !== done) Atomics.notify(map, DriverMap.doneSeq);
}
