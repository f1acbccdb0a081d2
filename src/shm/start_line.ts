/**
 * A start line for device streams timed together (bench/dma_rig.ts's
 * dma.p2p.2streams against memcpy.2threads and .2threads.same, whose
 * threads also leave on one go word once both are ready): commands sent to several devices one after another arrive
 * a dispatch apart (a device worker may be asleep in its wait when its
 * command is posted: 1-4 ms under load against a ~30 ms stream), so each
 * device counts itself ready and waits; main waits until all are, then
 * lets them go at once.
 *
 *   main                                 device (va-stream, before its clock starts)
 *   ----                                 ------
 *   post the commands                    Atomics.add(ready, 1); notify(ready)
 *   waitAsync(ready) until == n          loop: load(go) != 0 -> start the clock
 *   Atomics.store(go, 1); notify(go)           serve invalidations (never blocked
 *                                              by the line), Atomics.wait(go, 0, slice)
 *   [Required: no device starts its clock before go; a device that waits
 *    past its deadline fails its command naming itself, never hangs]
 */
import { defineLayout } from './layout.js';

export const StartLine = defineLayout({
  ready: { writer: 'worker', doc: 'devices at the line (Atomics.add + notify by each)' },
  go: { writer: 'main', doc: '0 until main releases the line, then 1 (Atomics.store + notify)' },
});

/** A device gives up waiting at the line after this long (a main that never says go). */
export const START_LINE_DEADLINE_MS = 5000;
