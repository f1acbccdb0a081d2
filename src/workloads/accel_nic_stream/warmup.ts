/**
 * accel-nic-stream's warm-up: before the timed window, each mode runs its
 * own path untimed on buffers of its own: 2 x WARM_ROUNDS results of the
 * stream's result size through min(2, buffers) buffers, then unmaps them.
 * p2p: COMPUTE into an exported buffer and SEND it through the BAR; when
 * the stream itself moves buffers (evict: move, revokes > 0) the last two
 * results are also moved (BarExporter.revoke: the NIC acks the
 * invalidation), hinted (NIC_OP_PREFETCH) and sent again (the refault).
 * bounce: COMPUTE, COPY_TO_VA into a RAM staging buffer, SEND from RAM.
 * Without it the window pays V8 compiling the device and kernel code on
 * first use (the first SENDs of a run took 1.2-4.8 ms against 0.45 warm),
 * and p2p has more of its own to compile (BAR decode, invalidation,
 * refault) than bounce. hmm-peer has a warm-up of its own (smaller:
 * ../hmm_peer/warmup.ts); the bench's warm-up pair does the same for the
 * kernel thread. `evict: revoke`'s refusal and resend path is not warmed
 * (it compiles in the window).
 *
 * Why the stream's own size and 8 rounds: pooled device workers
 * (src/devices/worker_pool.ts) do not keep their optimized code from the
 * run before (at reset the previous machine's objects are collected and
 * V8 deoptimizes the code that embedded them: "weak objects" in
 * `--trace-deopt`), and a small warm-up left the 512-page command paths to
 * TurboFan inside the window in both modes. Figures: docs/DESIGN.md,
 * "accel-nic-stream, session 11".
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
  // Never more buffers than the stream's own: its memory (and BAR) is sized for those (and a move's copy only if it moves).
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

/**
 * 2 x WARM_ROUNDS results through the (one or two) buffers; when the stream
 * will move buffers (p2p, evict: move, revokes > 0), the last two also move
 * theirs and refault. Only then: a move allocates the copy before it frees
 * the old pages, so it needs a result of accelerator memory more than a
 * stream that never moves was sized for.
 */
async function warmRounds(ww: AccelNicStreamWorkload, rig: AccelNicRig, bufs: Buffers): Promise<void> {
  const { runner, accQ, nicQ } = rig;
  const moves = ww.revokes > 0 && ww.evict === 'move';
  for (let r = 0; r < 2 * WARM_ROUNDS; r++) {
    const b = r % ww.buffers;
    await runner.run(accQ, { opcode: ACC_OP_COMPUTE, src: bufs.local(b), dst: 0, len: ww.resultBytes, args: computeArgs({ iterations: ww.iterations, seed: -1 - r, publishEvery: 0, flags: ACC_F_INIT }) });
    if (bufs.staging.length > 0) await runner.run(accQ, { opcode: ACC_OP_COPY_TO_VA, src: bufs.local(b), dst: bufs.staging[b], len: ww.resultBytes, args: [] });
    const send = { opcode: NIC_OP_SEND, src: bufs.sendVa(b), dst: 0, len: ww.resultBytes, args: [] };
    await runner.run(nicQ, send);
    if (bufs.ex && moves && r >= 2 * WARM_ROUNDS - 2) {
      // p2p's own path: the driver moves the buffer, hints the NIC, the NIC refaults.
      await bufs.ex.revoke(bufs.exported[b].vma);
      await runner.run(nicQ, { ...send, opcode: NIC_OP_PREFETCH });
      await runner.run(nicQ, send);
    }
  }
}
