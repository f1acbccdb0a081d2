/**
 * Command ABI of the `nvme` device kind (workers/nvme.ts). Types and
 * constants only. The controller keeps its blocks in its own device memory
 * (the "namespace"), and runs two kinds of queue pairs:
 *
 * - host queues (qid 0, src/drivers/host_queue.ts): rings in system RAM,
 *   data pointers are bus addresses, completions interrupt the host;
 * - CMB queues (qid >= 1, NVME_CMB_QID by default): rings and a data area
 *   inside the controller memory buffer (its own memory, reached by peers
 *   through BAR2), completions announced by an MSI that is a DMA write of
 *   the completion count to `msiAddr` (a peer's BAR0 register) — so a peer
 *   drives the queue with no CPU (RFC use case [A]).
 *
 * I/O commands (SqEntry), after the NVMe NVM command set:
 *   NVME_OP_WRITE  src = data pointer, len = bytes (whole blocks),
 *                  args[NVME_ARG_LBA] = first block, args[NVME_ARG_FLAGS]
 *   NVME_OP_READ   dst = data pointer, the rest as WRITE
 *   flags NVME_F_CMB: the data pointer is a byte offset into the queue's
 *                  CMB data area, not a bus address (CMB queues only)
 *   -> Success, result = blocks moved; InvalidField (range, length, flags),
 *      DataTransferError (bus fault; result = device error log sequence).
 * Commands of one queue execute in submission order.
 *
 * Control (DeviceEndpointApi.deviceCmd), from src/drivers/nvme_driver.ts:
 *   nvme-format { blockOff, blocks }   the namespace: `blocks` blocks at
 *       device byte offset blockOff (zeroed); the first NVME_ADMIN_BYTES of
 *       the memory are the controller's own (Machine reserves them)
 *   nvme-create-cmb-queue { qid, entries, sqOff, cqOff, dataOff, dataBytes, msiAddr }
 *       offsets are device byte offsets of the CMB pages; msiAddr 0 = no MSI
 *   nvme-counters {} -> NvmeCounters
 */
/** The controller's working memory at the start of its local memory (device_kinds.ts minMemBytes). */
export const NVME_ADMIN_BYTES = 4096;

/** NVMe NVM command set opcodes. */
export const NVME_OP_WRITE = 0x01;
export const NVME_OP_READ = 0x02;

/** SqCommand.args positions. */
export const NVME_ARG_LBA = 0;
export const NVME_ARG_FLAGS = 1;

/** The data pointer is an offset into the queue's CMB data area. */
export const NVME_F_CMB = 1;

export const NVME_HOST_QID = 0;
/** The queue pair the driver places in the CMB for a peer. */
export const NVME_CMB_QID = 1;

export interface NvmeCounters {
  readonly errno: 0;
  readonly reads: number;
  readonly writes: number;
  readonly blocksRead: number;
  readonly blocksWritten: number;
  /** Commands that came through CMB queues (a peer) and host queues. */
  readonly cmbCommands: number;
  readonly hostCommands: number;
  /** MSIs written to a peer. */
  readonly msis: number;
  /** READs whose data the x-corrupt-read knob damaged. */
  readonly corrupted: number;
}
