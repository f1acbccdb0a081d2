/**
 * accel-nic-stream's warm-up: before the timed window, each mode runs its
 * own path on two result buffers of its own (the stream's result size,
 * WARM_ROUNDS results through each; one buffer when the stream has one),
 * then unmaps them. p2p: COMPUTE into an exported buffer, SEND it through
 * the BAR, move it (BarExporter.revoke: the NIC acks the invalidation),
 * fault-ahead hint (NIC_OP_PREFETCH) and SEND it again (the refault).
 * bounce: COMPUTE, COPY_TO_VA into a RAM staging buffer, SEND from RAM. Without it the window pays V8 compiling
 * the device and kernel code on first use (the first SENDs of a run took
 * 1.2-4.8 ms against 0.45 warm), and p2p has more of its own to compile
 * (BAR decode, invalidation, refault) than bounce. The same warm-up as
 * hmm-peer's (../hmm_peer/warmup.ts); the bench's warm-up pair does the
 * same for the kernel thread. It warms the RFC's move; `evict: revoke`'s
 * refusal and resend path is not warmed (it compiles in the window, as
 * before).
 *
 * Why the stream's own size and 8 rounds (issue 11, session 11): pooled
 * device workers (src/devices/worker_pool.ts) do not keep their optimized
 * code from the run before: at reset the previous machine's objects are
 * collected and V8 deoptimizes the code that embedded them (`--trace-deopt`:
 * "marking dependent code ... reason: weak objects" for DeviceTlb.block,
 * word, usable, runPages, verifyRun, copyPieces, ...). The warm-up of 2 x 3
 * results of 128 pages it replaces did not make the code of 512-page
 * commands hot (their per-burst functions, transfer, io, chunks, onGather,
 * ... were compiled by TurboFan inside the window in both modes: 30 ms of
 * helper-thread CPU in a 55 ms p2p window, 44 ms in bounce's, on 2 cores,
 * where `perf sched` showed a device thread runnable and not run for 5.8
 * ms while helper threads compiled). With this one (5 alternated pairs
 * under the measuring lock) p2p's window went 52-59 -> 46-49 ms and
 * bounce's 63-75 -> 51-54 ms: the row's ratio fell from 1.19-1.42 to
 * 1.06-1.15, the honest figure (the window is device work, not JIT).
 *
 * The device counters are cumulative: the workload's Accounting reads them
 * relative to a Baseline (../counter_baseline.ts) taken after the warm-up,
 * so nothing of it reaches the window's figures. The run-wide figures
 * runScenario adds beside them do include it, as they include every
 * workload's setup: RunReport.ackUs (the HTML report's histogram) and
 * RunReport.p2pSlots (the summary's "p2p map / unmap" line, whole run).
 */
import { ACC_F_INIT, ACC_OP_COMPUTE, ACC_OP_COPY_TO_VA, computeArgs } from '../../devices/accelerator_abi.js';
import { NIC_OP_PREFETCH, NIC_OP_SEND } from '../../devices/nic_abi.js';
import type { AccelNicRig } from '../accel_nic_rig.js';
import { allocBuffers, type Buffers } from './buffers.js';
import type { AccelNicStreamWorkload } from './schema.js';

/** Results through each warm-up buffer (each of the stream's result size; the buffers are unmapped before the stream). */
export const WARM_ROUNDS = 8;

/**
 * This mode's path on two buffers of its own (one when the stream has one), untimed; the buffers
 * are unmapped at the end. Returns the commands it submitted (the summary
 * states them). A failure names the warm-up, so nobody looks for it in the
 * stream; a failure to free the buffers after one does not hide it.
 */
export async function warmUp(w: AccelNicStreamWorkload, rig: AccelNicRig, bounce: boolean): Promise<number> {
  const what = `${w.accelerator} -> ${w.nic}: accel-nic-stream warm-up (${bounce ? 'bounce' : 'p2p'}, untimed, before the window)`;
  // Never more buffers than the stream's own: its memory (and BAR) is sized for those.
  const ww: AccelNicStreamWorkload = { ...w, buffers: Math.min(2, w.buffers) };
  const bufs = await allocBuffers(ww, rig, bounce);
  const n0 = rig.runner.submitted;
  let failed: unknown = null;
  try {
    await warmRounds(ww, rig, bufs);
  } catch (e) {
    failed = e;
  }
  try {
    await bufs.free();
  } catch (e) {
    failed ??= e;
  }
  if (failed !== null) throw new Error(`${what} failed: ${failed instanceof Error ? failed.message : String(failed)}`, { cause: failed });
  return rig.runner.submitted - n0;
}

/** 2 x WARM_ROUNDS results through the (one or two) buffers; the last two also move their buffer and refault (p2p). */
async function warmRounds(ww: AccelNicStreamWorkload, rig: AccelNicRig, bufs: Buffers): Promise<void> {
  const { runner, accQ, nicQ } = rig;
  for (let r = 0; r < 2 * WARM_ROUNDS; r++) {
    const b = r % ww.buffers;
    await runner.run(accQ, { opcode: ACC_OP_COMPUTE, src: bufs.local(b), dst: 0, len: ww.resultBytes, args: computeArgs({ iterations: ww.iterations, seed: -1 - r, publishEvery: 0, flags: ACC_F_INIT }) });
    if (bufs.staging.length > 0) await runner.run(accQ, { opcode: ACC_OP_COPY_TO_VA, src: bufs.local(b), dst: bufs.staging[b], len: ww.resultBytes, args: [] });
    const send = { opcode: NIC_OP_SEND, src: bufs.sendVa(b), dst: 0, len: ww.resultBytes, args: [] };
    await runner.run(nicQ, send);
    if (bufs.ex && r >= 2 * WARM_ROUNDS - 2) {
      // p2p's own path: the driver moves the buffer, hints the NIC, the NIC refaults.
      await bufs.ex.revoke(bufs.exported[b].vma);
      await runner.run(nicQ, { ...send, opcode: NIC_OP_PREFETCH });
      await runner.run(nicQ, send);
    }
  }
}
