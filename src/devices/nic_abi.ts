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
 *                  the checksum (src/devices/fnv.ts: FNV-1a over 32-bit
 *                  little-endian words in four lanes; device side
 *                  src/devices/models/checksum.ts) over every byte in
 *                  order, continued across chunks.
 *                  -> Success, result = checksum | 0.
 * NIC_OP_PREFETCH  src = VA, len = bytes: a fault-ahead hint, as
 *                  ibv_advise_mr(IBV_ADVISE_MR_ADVICE_PREFETCH) is for an
 *                  ODP memory region. The NIC asks the kernel for the
 *                  translations of [src, +len) its TLB cannot use (one page
 *                  request of at most FAULT_WINDOW pages, from the first
 *                  missing page to the last) and completes without waiting
 *                  for the reply; its next fault there collects it
 *                  (DeviceTlb.prefetch). Advisory: nothing missing, or a
 *                  fault-ahead still unanswered, and nothing is asked;
 *                  an invalidation of the range before the reply is used
 *                  makes the NIC ask again on demand.
 *                  -> Success, result = pages asked (0: none).
 * NIC_OP_MONITOR   src = VA of a ProgressRecord (src/shm/progress_record.ts),
 *                  dst = VA of the sample log (MonitorSample, 16 bytes each),
 *                  args[NIC_MON_PERIOD_US], args[NIC_MON_MAX_SAMPLES].
 *                  Each poll DMA-reads the whole record, then its seq again;
 *                  odd or moved seq = torn: retried and counted (at once,
 *                  then with short sleeps past NIC_MON_SPIN_TORN in a row);
 *                  NIC_MON_STUCK_MS of torn reads only fails the command.
 *                  Accepted samples are written to dst + i * 16 and must have
 *                  non-decreasing iteration (violations counted). Ends after
 *                  an accepted sample with done == 1, or max samples.
 *                  -> Success, result = samples written.
 *
 * RFC workload (1), "a NIC drives an NVMe queue" (src/workloads/nic_nvme/):
 * the client stream is ClientStream (below; the NIC generates it with
 * src/devices/models/nic_client.ts),
 * given in args[NIC_ARG_SEED .. NIC_ARG_WRITE_PCT]; every request's outcome
 * goes to the IO log (NicIoLog), indexed by request number.
 *
 * NIC_OP_NVME_ATTACH  src = VA of a CMB queue VMA (NvmeDriver.createCmbQueue:
 *                  SQ at +0), len = its bytes, dst = bus address of the
 *                  NVMe's BAR0 (doorbells), args[NIC_ARG_QID, _ENTRIES,
 *                  _CQ_OFFSET, _DATA_OFFSET, _DATA_BYTES]. Faults the whole
 *                  VMA into the device TLB (writable) now, so the stream
 *                  needs no page request. -> Success, result = pages.
 * NIC_OP_NVME_RUN  stream args + args[NIC_ARG_IOS, NIC_ARG_QDEPTH,
 *                  NIC_ARG_IO_BYTES]: for requests 0..ios-1 the NIC writes
 *                  WRITE data into a CMB data slot and NVMe commands into
 *                  the SQ (by VA), rings the SQ tail doorbell (DMA write to
 *                  BAR0), sleeps until the NVMe's MSI (a DMA write to
 *                  NIC_MSI_REG of the NIC's BAR0), reads CQEs (by VA),
 *                  reads READ data from the slot and checksums it, rings
 *                  the CQ head doorbell. No CPU. -> Success, result = IOs.
 * NIC_OP_RECV      (bounce path) stream args + args[NIC_ARG_IO]: receives
 *                  request io; a WRITE's data is DMA-written to dst (a bus
 *                  address: the kernel's staging buffer), len = IO bytes.
 *                  -> Success, result = lba | (WRITE ? NIC_RECV_WRITE : 0).
 * NIC_OP_XMIT      (bounce path) args[NIC_ARG_IO]: answers request io; a
 *                  READ's data is DMA-read from src (bus address), len bytes,
 *                  and checksummed; len 0 acknowledges a WRITE.
 *                  -> Success, result = checksum | 0 (0 for an ack).
 *
 * Errors: a VA fault or DMA error -> DataTransferError, result = the
 * device error log sequence (DeviceHandle.call('errors') has the message);
 * a bad field -> InvalidField; an unknown opcode -> InvalidOpcode.
 *
 * Control (DeviceEndpointApi.deviceCmd):
 *   { op: 'nic-counters' } -> { errno: 0, sent, sendChecksum, sends, samples,
 *                               torn, nonMonotonic, monitors, prefetched,
 *                               simdBytes, ...the NVMe engine's counters }
 *   (cumulative since the device started; sendChecksum is the last SEND's.)
 *   { op: 'nic-iolog', first, count } -> { errno: 0, log: Int32Array }
 *                              NicIoLog entries [first, first + count)
 */
import { DeviceRegs } from '../shm/device_ctl.js';
export { MonitorSample, NicIoLog, NIC_IOLOG_DONE, NIC_PKT_SLOT_BYTES, NIC_PKT_SLOTS } from '../shm/nic_layout.js';

/** Host queue the NIC's commands go to. */
export const NIC_HOST_QID = 0;

export const NIC_OP_SEND = 1;
export const NIC_OP_MONITOR = 2;

export const NIC_OP_NVME_ATTACH = 3;
export const NIC_OP_NVME_RUN = 4;
export const NIC_OP_RECV = 5;
export const NIC_OP_XMIT = 6;
export const NIC_OP_PREFETCH = 7;

/** Client stream arguments (NVME_RUN, RECV) — ClientStream fields. */
export const NIC_ARG_SEED = 0;
export const NIC_ARG_BLOCKS = 1;
export const NIC_ARG_BLOCKS_PER_IO = 2;
export const NIC_ARG_WRITE_PCT = 3;
/** NVME_RUN. */
export const NIC_ARG_IOS = 4;
export const NIC_ARG_QDEPTH = 5;
export const NIC_ARG_IO_BYTES = 6;
/** RECV, XMIT: the request number. */
export const NIC_ARG_IO = 4;
/** NVME_ATTACH. */
export const NIC_ARG_QID = 0;
export const NIC_ARG_ENTRIES = 1;
export const NIC_ARG_CQ_OFFSET = 2;
export const NIC_ARG_DATA_OFFSET = 3;
export const NIC_ARG_DATA_BYTES = 4;

/** RECV result bit: the request is a WRITE. */
export const NIC_RECV_WRITE = 1 << 30;

/**
 * The NIC's MSI mailbox in its BAR0 (DeviceRegs.msi): a peer that completes
 * work for the NIC DMA-writes a count there (the write wakes the NIC).
 */
export const NIC_MSI_REG = DeviceRegs.msi;
/** NVME_RUN gives up when the NVMe posts nothing for this long. */
export const NIC_NVME_STALL_MS = 5000;

/** NIC_OP_MONITOR argument positions (SqCommand.args). */
export const NIC_MON_PERIOD_US = 0;
export const NIC_MON_MAX_SAMPLES = 1;

/**
 * MONITOR gives up when every read for this long was torn (a writer stuck
 * mid-update). A time, not a count: on a loaded machine the writer's
 * thread can be descheduled mid-update for tens of milliseconds, during
 * which a count of back-to-back retries (100,000 was ~0.1 s) ran out.
 */
export const NIC_MON_STUCK_MS = 2000;
/** Torn reads in a row retried at once before MONITOR yields the CPU between retries (the writer may need it to finish). */
export const NIC_MON_SPIN_TORN = 64;
/** How long MONITOR sleeps between torn retries once past NIC_MON_SPIN_TORN (ms; acking invalidations meanwhile). */
export const NIC_MON_TORN_SLEEP_MS = 0.05;

/** The NVMe-driving engine's part of the 'nic-counters' answer (workers/nic_nvme_engine.ts). */
export interface NicNvmeCounters {
  /** Requests completed, and of them READs and WRITEs (both paths). */
  readonly ios: number;
  readonly ioReads: number;
  readonly ioWrites: number;
  /** P2P path: doorbell writes to the NVMe, CQ polls that found nothing new, sleeps on the wake word. */
  readonly sqDoorbells: number;
  readonly cqDoorbells: number;
  readonly emptyCqPolls: number;
  readonly waits: number;
  /** Bounce path: RECV and XMIT commands. */
  readonly recvs: number;
  readonly xmits: number;
  /** MSIs the NVMe wrote to the NIC's NIC_MSI_REG. */
  readonly msi: number;
}

/** Answer of deviceCmd({ op: 'nic-counters' }). */
export interface NicCounters extends NicNvmeCounters {
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
  /** Pages PREFETCH asked the kernel for ahead. */
  readonly prefetched: number;
  /** SEND bytes the sink checksummed in WebAssembly in place (local memory a WebAssembly.Memory); the rest in JS. */
  readonly simdBytes: number;
}

/**
 * The synthetic client of workload (1): a seeded stream of block READs and
 * WRITEs that "arrives over the network" at the NIC. Stateless per request
 * (request i is a function of the seed and i), so the NIC generates it on
 * the device (src/devices/models/nic_client.ts) and the checker replays it
 * on the CPU (src/workloads/reference/nic_client.ts) without a channel
 * between them. Definition:
 *
 *   mix(x)     lowbias32: x ^= x >>> 16; x = imul(x, CLIENT_MIX_A);
 *              x ^= x >>> 15; x = imul(x, CLIENT_MIX_B); (x ^ x >>> 16) >>> 0
 *   request i  h = mix(mix(seed ^ CLIENT_SEED_SALT) ^ i)
 *              write = h % 100 < writePct
 *              lba   = mix(h ^ CLIENT_LBA_SALT) % (blocks - blocksPerIo + 1)
 *   payload i  x = mix(seed * CLIENT_PAYLOAD_SEED_MUL + i) | 1, then one
 *              xorshift32 step (<< 13, >>> 17, << 5) per 32-bit word,
 *              little-endian, the word after the step
 */
export interface ClientStream {
  readonly seed: number;
  /** Blocks the client addresses: LBAs [0, blocks - blocksPerIo]. */
  readonly blocks: number;
  readonly blocksPerIo: number;
  /** Percentage of WRITEs. */
  readonly writePct: number;
}

export interface ClientRequest {
  readonly write: boolean;
  readonly lba: number;
}

export const CLIENT_MIX_A = 0x7feb352d;
export const CLIENT_MIX_B = 0x846ca68b;
export const CLIENT_SEED_SALT = 0x9e3779b9;
export const CLIENT_LBA_SALT = 0x85ebca6b;
export const CLIENT_PAYLOAD_SEED_MUL = 0x10001;
