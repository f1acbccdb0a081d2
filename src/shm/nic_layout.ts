/**
 * Shared layouts of the NIC model (workers/nic.ts): its local memory (the
 * packet buffers and the small staging area its DMA engine moves
 * descriptors through) and the records it writes into process memory.
 *
 * Invariants:
 * - the NIC's local memory belongs to the NIC alone: no driver allocates
 *   from it or exports it (it is not a BarExporter target), so the worker
 *   may place these regions itself;
 * - the staging words are written and read by the NIC worker only; they
 *   are bus-visible only through the NIC's own DMA engine (as the source
 *   or destination of a transfer), never decoded by a peer;
 * - a monitor sample is written to process memory with one DMA of
 *   MonitorSample.kBytes; the process reads it after the command completed.
 */
import { defineLayout } from './layout.js';
import { ProgressRecord } from './progress_record.js';
import { SqEntry, CqEntry } from './ring.js';

/** Bytes of one packet buffer slot, and the largest SEND chunk (= DMA_CHECK_BYTES). */
export const NIC_PKT_SLOT_BYTES = 64 * 1024;
/** Packet buffer slots: SEND uses slot 0; the NVMe stream one per IO in flight (each IO <= a slot). */
export const NIC_PKT_SLOTS = 3;

/**
 * Submission entries the NVMe engine stages before one DMA-write to a
 * peer SQ, and completion entries it DMA-reads from a peer CQ at once: a
 * batch is one bus transfer instead of one per entry (a queue depth of
 * 16 4 KiB requests was three VA transfers a request, two of them for
 * 64- and 16-byte entries).
 */
export const NIC_QE_BATCH = 32;

/** One sample of the monitoring packet stream (NIC_OP_MONITOR), 16 bytes, int32 LE. */
export const MonitorSample = defineLayout({
  iteration: { writer: 'worker', doc: 'ProgressRecord.iteration of the accepted read' },
  checksum: { writer: 'worker', doc: 'ProgressRecord.checksum of the accepted read' },
  torn: { writer: 'worker', doc: 'torn reads retried so far in this MONITOR command' },
  rsvd: { writer: 'worker', doc: 'always 0' },
});

/**
 * The NIC's local memory, in words (byte offset = field * 4). Staging
 * first (one page), then the packet buffers.
 */
export const NicMem = defineLayout({
  sqe: { words: SqEntry.kFieldCount * NIC_QE_BATCH, writer: 'worker', doc: 'up to NIC_QE_BATCH submission entries staged before one DMA-write to a peer SQ' },
  cqe: { words: CqEntry.kFieldCount * NIC_QE_BATCH, writer: 'worker', doc: 'up to NIC_QE_BATCH completion entries DMA-read at once from a peer CQ' },
  doorbell: { writer: 'worker', doc: 'the value DMA-written to a peer doorbell register (aligned 32-bit)' },
  record: { words: ProgressRecord.kFieldCount, writer: 'worker', doc: 'a ProgressRecord DMA-read by MONITOR' },
  recordSeq: { writer: 'worker', doc: 'ProgressRecord.seq read again after the record (seqcount re-check)' },
  sample: { words: MonitorSample.kFieldCount, writer: 'worker', doc: 'the MonitorSample being written to process memory' },
  rsvd: { words: 1024 - (SqEntry.kFieldCount + CqEntry.kFieldCount) * NIC_QE_BATCH - 1 - ProgressRecord.kFieldCount - 1 - MonitorSample.kFieldCount, writer: 'worker', doc: 'pads staging to one page' },
  pkt: { words: (NIC_PKT_SLOTS * NIC_PKT_SLOT_BYTES) / 4, writer: 'worker', doc: 'packet buffers: NIC_PKT_SLOTS slots of NIC_PKT_SLOT_BYTES' },
});

/** Bytes of local memory the NIC needs (device_kinds.ts: minimum 256 KiB covers it). */
export const NIC_MEM_BYTES = NicMem.kBytes;

/**
 * One entry of the NIC's IO log (workload (1)), indexed by request number:
 * what the NIC did for client request i, in the order it submitted the
 * requests to the NVMe. Kept inside the NIC (not bus-visible); the checker
 * reads it after the run through deviceCmd 'nic-iolog'.
 */
export const NicIoLog = defineLayout({
  opcode: { writer: 'worker', doc: 'NVMe opcode submitted for the request (NVME_OP_READ / NVME_OP_WRITE), 0 = not seen' },
  lba: { writer: 'worker', doc: 'first block of the request' },
  checksum: { writer: 'worker', doc: 'READ: checksum (src/devices/fnv.ts, | 0) of the data delivered to the client; WRITE: 0' },
  flags: { writer: 'worker', doc: 'NIC_IOLOG_DONE once the response went back to the client' },
});
export const NIC_IOLOG_DONE = 1;
