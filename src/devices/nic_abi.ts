/**
 * Command ABI of the `nic` device kind (workers/nic.ts). Types and
 * constants only (comlink's protocol.ts style): what a kernel-side user
 * puts in a host-queue submission (src/drivers/host_queue.ts, qid 0) and
 * what comes back in the completion.
 *
 * Every command that names process memory addresses it by process virtual
 * address: the NIC must be bound first (ImporterBinding.bind(kernel, nic,
 * mm)); its DMA then goes through its device TLB (workers/runtime/va_space.ts).
 *
 * NIC_OP_SEND      src = VA of the data, len = bytes.
 *                  The NIC DMAs [src, +len) in chunks of at most
 *                  NIC_PKT_SLOT_BYTES into a packet buffer; the sink runs
 *                  fnv1a (src/workloads/checksum.ts) over every byte in
 *                  order, continued across chunks.
 *                  -> Success, result = checksum | 0.
 * NIC_OP_MONITOR   src = VA of a ProgressRecord (src/shm/progress_record.ts),
 *                  dst = VA of the sample log (MonitorSample, 16 bytes each),
 *                  args[NIC_MON_PERIOD_US], args[NIC_MON_MAX_SAMPLES].
 *                  Each poll DMA-reads the whole record, then its seq again;
 *                  odd or moved seq = torn: retried at once and counted.
 *                  Accepted samples are written to dst + i * 16 and must have
 *                  non-decreasing iteration (violations counted). Ends after
 *                  an accepted sample with done == 1, or max samples.
 *                  -> Success, result = samples written.
 *
 * Errors: a VA fault or DMA error -> DataTransferError, result = the
 * device error log sequence (DeviceHandle.call('errors') has the message);
 * a bad field -> InvalidField; an unknown opcode -> InvalidOpcode.
 *
 * Control (DeviceEndpointApi.deviceCmd):
 *   { op: 'nic-counters' } -> { errno: 0, sent, sendChecksum, sends, samples,
 *                               torn, nonMonotonic, monitors }
 *   (cumulative since the device started; sendChecksum is the last SEND's.)
 */
export { MonitorSample, NIC_PKT_SLOT_BYTES, NIC_PKT_SLOTS } from '../shm/nic_layout.js';

/** Host queue the NIC's commands go to. */
export const NIC_HOST_QID = 0;

export const NIC_OP_SEND = 1;
export const NIC_OP_MONITOR = 2;

/** NIC_OP_MONITOR argument positions (SqCommand.args). */
export const NIC_MON_PERIOD_US = 0;
export const NIC_MON_MAX_SAMPLES = 1;

/** Consecutive torn reads after which MONITOR gives up (a writer stuck mid-update). */
export const NIC_MON_MAX_TORN_IN_A_ROW = 100000;

/** Answer of deviceCmd({ op: 'nic-counters' }). */
export interface NicCounters {
  readonly errno: 0;
  /** Bytes transmitted by SEND. */
  readonly sent: number;
  /** Checksum (| 0) of the last SEND. */
  readonly sendChecksum: number;
  readonly sends: number;
  /** MONITOR samples written, torn reads retried, accepted samples whose iteration went backwards. */
  readonly samples: number;
  readonly torn: number;
  readonly nonMonotonic: number;
  readonly monitors: number;
}
