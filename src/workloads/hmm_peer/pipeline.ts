/**
 * hmm-peer's first pass: migrate the buffer to the accelerator and
 * TRANSFORM it in place by VA, chunk by chunk, so the kernel migrates
 * chunk k + 1 (p2p) while the accelerator transforms chunk k.
 *
 * The overlap is this workload's own design, not upstream's:
 * lib/test_hmm.c's dmirror_migrate_to_device() loops over 64-page chunks
 * inside one ioctl (migrate_vma_setup/pages/finalize and
 * dmirror_migrate_finalize_and_map per chunk) and has no device working on
 * chunk k while chunk k + 1 migrates. What we take from it is the
 * per-chunk migrate-then-map; the driver's posts of each chunk's
 * translations wait in the DriverMap ring (src/shm/driver_map_layout.ts)
 * until the accelerator starts on it.
 *
 *   check the whole buffer against free device memory   (ENOMEM up front)
 *   per chunk: migrateToDevice (p2p) ; TRANSFORM_VA(chunk) in flight
 *              (a full queue waits for the oldest TRANSFORM)
 *   on any error: wait for every TRANSFORM in flight to settle, rethrow
 *
 * [Required: no TRANSFORM promise is left unhandled: one that rejects
 *  while the loop is still migrating (DeviceError, timeout) is handled at
 *  once and its error reaches the caller after the others settled, so
 *  runScenario's error path runs, never Node's unhandled-rejection exit.]
 */
import { migrateToDevice } from '../../kernel/migrate.js';
import { PAGE_SIZE } from '../../shm/constants.js';
import { PeerVmaError } from '../../errors.js';
import { ACC_ARG_SEED, ACC_ARG_STAGE_PAGE, ACC_ARG_STAGE_PAGES, ACC_ARG_WORD0, ACC_OP_TRANSFORM_VA } from '../../devices/accelerator_abi.js';
import type { AccelNicRig } from '../accel_nic_rig.js';
import type { WorkloadContext } from '../workload.js';
import type { HmmPeerWorkload } from './schema.js';

/**
 * Migration and TRANSFORM of [va, +pages) chunk by chunk (bounce mode
 * submits the same TRANSFORMs with nothing to migrate). Returns the pages
 * migrated. Throws ENOMEM before migrating anything when the accelerator's
 * free device memory cannot hold the buffer.
 */
export async function migrateAndTransform(ctx: WorkloadContext, w: HmmPeerWorkload, rig: AccelNicRig, va: number, pages: number, stage: number): Promise<number> {
  const { accQ, kernel, mm, runner } = rig;
  const devmem = ctx.mode !== 'bounce' ? kernel.devmem(w.accelerator) : null;
  // migrateToDevice checks each chunk alone; a later chunk's ENOMEM would come after earlier chunks migrated.
  if (devmem !== null && pages > devmem.freePages) {
    throw new PeerVmaError('ENOMEM', `${w.accelerator} memory`, `migrating the ${pages}-page buffer to the accelerator's device memory, ${devmem.freePages} pages free`);
  }
  const len = pages * PAGE_SIZE;
  const chunk = w.chunkPages * PAGE_SIZE;
  const inFlight: Promise<unknown>[] = [];
  let migratedIn = 0;
  try {
    for (let off = 0; off < len; off += chunk) {
      const n = Math.min(chunk, len - off);
      if (devmem !== null) migratedIn += await migrateToDevice(mm, va + off, va + off + n, devmem);
      const args = [0, 0, 0, 0];
      args[ACC_ARG_STAGE_PAGE] = stage;
      args[ACC_ARG_SEED] = ctx.seed;
      args[ACC_ARG_STAGE_PAGES] = w.stagePages;
      args[ACC_ARG_WORD0] = off / 4;
      // The queue bounds the pipeline: a full one waits for the oldest TRANSFORM.
      while (accQ.full && inFlight.length > 0) await inFlight.shift();
      const p = runner.run(accQ, { opcode: ACC_OP_TRANSFORM_VA, src: va + off, dst: 0, len: n, args });
      // Handled now: a rejection while we are still migrating is rethrown by the await below or in the catch.
      p.catch(() => undefined);
      inFlight.push(p);
    }
    await Promise.all(inFlight);
  } catch (e) {
    await Promise.allSettled(inFlight);
    throw e;
  }
  return migratedIn;
}
