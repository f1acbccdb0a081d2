/**
 * accel-nic-stream's p2p send trigger, GPUDirect Async style: the kernel
 * prepares each result's SEND in a NIC queue of its own without ringing
 * its doorbell, queues COMPUTE and then ACC_OP_WRITE_VALUE on the
 * accelerator (cuStreamWriteValue32), and the accelerator itself rings
 * the NIC's doorbell through a p2p mapping of the NIC's BAR0 once the
 * result is computed. Neither completion on the accelerator raises an MSI
 * (SQE_F_QUIET) unless the driver asks for it; the NIC's SEND does.
 *
 *   kernel                          acc                        nic (queue NIC_PEER_QID)
 *   ------                          ---                        ------------------------
 *   stage SEND(r) in SQ (no doorbell)
 *   COMPUTE(r) [quiet],
 *   WRITE_VALUE(tail) [quiet],
 *   one doorbell ---------------->  kernel into buf b
 *                                   DMA-write tail -> NIC BAR0 sqTail ---> SEND(r): DMA by VA
 *                     <-------------------------------------------------- CQE + MSI
 *   [Required: SEND(r) reads buffer b only after COMPUTE(r) wrote it: the
 *    accelerator runs its queue in order, so the doorbell follows the
 *    kernel; the staged entry's words are stored before the kernel rings
 *    the accelerator's doorbell, which is before the NIC's]
 *
 * Main wakes once a result (the SEND's MSI) instead of twice (COMPUTE's
 * and SEND's), and no longer stands between the accelerator's end of a
 * result and the NIC's start of it. The exporter keeps its power to move
 * the buffer: a move still invalidates the NIC (BarExporter.revoke), and
 * the next COMPUTE of a buffer is queued only after its SEND completed and
 * any move of it finished, with the buffer's pages as they are then. The
 * bounce path has no such trigger: a doorbell write from the accelerator
 * into the NIC's BAR is itself peer-to-peer traffic.
 *
 * Lifetime: one per single-stream p2p run (warm-up and stream); close()
 * frees the accelerator's staging word.
 */
import { ACC_OP_COMPUTE, ACC_OP_WRITE_VALUE } from '../../devices/accelerator_abi.js';
import { NIC_OP_SEND, NIC_PEER_QID } from '../../devices/nic_abi.js';
import { HostQueue } from '../../drivers/host_queue.js';
import { PAGE_SIZE } from '../../shm/constants.js';
import { DeviceRegs } from '../../shm/device_ctl.js';
import { bar0Base } from '../../shm/phys_mem.js';
import { SQE_F_QUIET, type Completion } from '../../shm/ring.js';
import type { Extent } from '../../shm/page_alloc.js';
import type { Machine } from '../../devices/machine.js';
import type { AccelNicRig } from '../accel_nic_rig.js';

/** What queueResult returns: the SEND's completion, and the accelerator's (its doorbell write's completion: the SEND was started). */
export interface TriggeredResult {
  readonly sent: Promise<Completion>;
  /** Resolves once the accelerator rang the NIC (signaled only when asked; else it resolves at some later MSI). */
  readonly started: Promise<Completion>;
  readonly computed: Promise<Completion>;
}

export class SendTrigger {
  /**
   * Results the stream may have queued at once: each holds two accelerator
   * entries, and up to one result's more may be consumed but not yet reaped
   * (quiet), in a ring of `depth` entries that holds depth - 1.
   */
  readonly ahead: number;

  private constructor(
    private readonly rig: AccelNicRig,
    private readonly q: HostQueue,
    /** The NIC's sqTail doorbell of NIC_PEER_QID as the accelerator addresses it (IOVA behind an IOMMU). */
    private readonly doorbell: number,
    private readonly scratch: Extent,
    depth: number,
  ) {
    this.ahead = SendTrigger.aheadFor(depth);
  }

  /** Results a queue of `depth` entries lets the trigger keep queued (0: too shallow for it). */
  static aheadFor(depth: number): number {
    return Math.max(0, Math.floor((depth - 3) / 2));
  }

  static async create(machine: Machine, rig: AccelNicRig, accelerator: string, depth: number): Promise<SendTrigger> {
    const q = await HostQueue.create(machine, rig.nic, NIC_PEER_QID, depth);
    const doorbell = rig.kernel.dmaMap(accelerator, bar0Base(rig.nic.shm.index) + (DeviceRegs.sqTail + NIC_PEER_QID) * 4, 4, true);
    return new SendTrigger(rig, q, doorbell, rig.acc.mem!.allocContig(1), depth);
  }

  /**
   * Queues result r: the SEND staged, COMPUTE and the doorbell write on the
   * accelerator. `signaled`: the doorbell write raises an MSI (the driver
   * wants to know when the SEND starts, or nothing follows it on the queue).
   */
  queueResult(send: { src: number; len: number }, compute: { src: number; len: number; args: number[] }, signaled: boolean): TriggeredResult {
    const { runner, accQ } = this.rig;
    const staged = runner.stage(this.q, { opcode: NIC_OP_SEND, src: send.src, dst: 0, len: send.len, args: [] });
    // Both accelerator commands behind one doorbell: one wake of the accelerator a result.
    const [computed, started] = runner.runBatch(accQ, [
      { opcode: ACC_OP_COMPUTE | SQE_F_QUIET, src: compute.src, dst: 0, len: compute.len, args: compute.args },
      { opcode: ACC_OP_WRITE_VALUE | (signaled ? 0 : SQE_F_QUIET), src: this.scratch.start * PAGE_SIZE, dst: this.doorbell, len: 4, args: [staged.tail] },
    ]);
    return { sent: staged.done, started, computed };
  }

  close(): void {
    this.rig.acc.mem!.freeExtent(this.scratch);
  }
}
