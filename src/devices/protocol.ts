/**
 * Control-plane protocol between the kernel (main thread) and a device
 * worker, carried by comlink. Types only, as comlink's protocol.ts.
 *
 * Kind-specific commands (deviceCmd) are declared once, here, as one table
 * per device kind: op name -> { args, reply }. From the tables come the
 * discriminated union DeviceCmd (what a driver may send) and DeviceReply<op>
 * (what it gets back), and CmdHandlers<ops> (what a worker model must
 * serve): the compiler checks both ends against the same row.
 *
 * Slow path only: configure, queue creation, start, stop, reset, error log. The
 * data plane (doorbells, DMA, invalidations, completions) never goes
 * through here; it is SAB + Atomics (src/shm/).
 */
import type { Errno } from '../errors.js';
import type { MachineShmDesc } from '../shm/phys_mem.js';
import type { AccCounters } from './accelerator_abi.js';
import type { NicCounters } from './nic_abi.js';
import type { NvmeCounters } from './nvme_abi.js';

/** Everything a worker needs to become a device. Structured-clonable. */
export interface DeviceConfig {
  readonly name: string;
  readonly index: number;
  readonly kind: string;
  readonly shm: MachineShmDesc;
  /** Kind-specific properties, already validated against the kind's property table. */
  readonly props: Readonly<Record<string, unknown>>;
  /** The machine's cooperative run tokens (src/shm/run_token_layout.ts); absent: tokens off. */
  readonly runTokens?: { readonly sab: SharedArrayBuffer; readonly timeoutMs: number };
}

/** Where a device sends completion interrupts of a queue. */
export type IrqTarget = { readonly kind: 'host' };

export interface QueueConfig {
  readonly qid: number;
  readonly entries: number;
  /** Bus address of the submission ring (must decode to one contiguous run). */
  readonly sqBus: number;
  /**
   * When set, the submission ring lives in the device's own memory at this
   * byte offset (a queue a peer drives through the device's BAR, use case
   * [A]); sqBus is then ignored.
   */
  readonly sqLocal?: number;
  /** Bus address of the completion ring. */
  readonly cqBus: number;
  readonly irq: IrqTarget;
}

/** One device-side error: what the device was doing and why it failed. */
export interface DeviceErrorRecord {
  readonly seq: number;
  readonly message: string;
}

/** The object each worker exposes through comlink. */
export interface DeviceEndpointApi {
  configure(cfg: DeviceConfig): void;
  createQueue(q: QueueConfig): void;
  start(): void;
  stop(): void;
  /** After stop: waits for the device loop to end, then forgets the machine (the worker may be configured again). */
  reset(): Promise<void>;
  /** Device errors logged since start (bad DMA addresses and the like). */
  errors(): DeviceErrorRecord[];
  /**
   * Kind-specific command (the tables below). Runs synchronously in the
   * worker; the command may wait on SAB words (page requests) while it
   * keeps serving invalidations. Kernel-side callers use
   * DeviceHandle.cmd, which types the reply by the op.
   */
  deviceCmd(cmd: DeviceCmd): DeviceReply;
}

/** One row of a command table: the arguments, the success reply (beside errno 0), and what a refusal may add to its errno and message. */
interface Op<Args extends object, Reply extends object = object, Fail extends object = object> {
  readonly args: Args;
  readonly reply: Reply;
  readonly fail: Fail;
}

/** Empty arguments or reply. */
type None = Record<never, never>;

/** What ImporterBinding.bind sends to bind a device to a process (workers/runtime/va_space.ts VaSpace). */
export interface BindInfo {
  /** PageRequest words (src/shm/tlb_layout.ts): the device's page requests and the kernel's replies. */
  readonly pri: SharedArrayBuffer;
  /** DriverMap words (src/shm/driver_map_layout.ts): translations the driver installs without a page request (after a migration to the device). */
  readonly map?: SharedArrayBuffer;
  /** The device's IOMMU domain, when its DMA is translated. */
  readonly iommu: SharedArrayBuffer | null;
  /** SafetyLog of the machine (violations found in check mode). */
  readonly safety: SharedArrayBuffer;
  readonly check: boolean;
}

/** Device-TLB counters of a device bound to a process (VaSpace); absent fields when unbound. */
export interface VaCounters {
  readonly faults: number;
  readonly pagesFaulted: number;
  readonly retries: number;
  /** Runs redone because an invalidation hit them mid-transfer. */
  readonly refaults: number;
  /** Faults answered by a fault-ahead request already in the mailbox (DeviceTlb.prefetch). */
  readonly prefetchHits: number;
  /** Device-TLB and IOTLB entries. */
  readonly tlb: number;
  readonly iotlb: number;
}

/** Served by the worker runtime for every kind (workers/device_main.ts). */
export interface RuntimeOps {
  'iommu-attach': Op<{ readonly domain: SharedArrayBuffer }>;
  'bind-mm': Op<BindInfo>;
  'unbind-mm': Op<None>;
  'va-counters': Op<None, Partial<VaCounters>>;
  /** workers/runtime/va_stream.ts: stream process memory by VA, no compute (peervma bench's data-path rows). */
  'va-stream': Op<VaStreamArgs, VaStreamResult>;
  /** VaSpace.prefault: translate [va, +len) before first use (ATS ahead of the stream), through the page-request path; replies the pages faulted in. */
  'va-prefault': Op<{ readonly va: number; readonly len: number; readonly write: boolean }, { readonly pages: number }>;
}

export interface VaStreamArgs {
  readonly va: number;
  readonly len: number;
  /** Bytes per command (one VaSpace read or write). */
  readonly cmdBytes: number;
  readonly localOff?: number;
  /** Local memory span the commands cycle through (default len). */
  readonly localSpan?: number;
  /** Write local memory to the process (default: read from it). */
  readonly write?: boolean;
  readonly passes?: number;
  /** Run whole passes until this much time has passed (overrides passes). */
  readonly untilMs?: number;
  /** A StartLine (src/shm/start_line.ts) shared with the streams timed together: the clock starts on its go. */
  readonly startLine?: SharedArrayBuffer;
}

export interface VaStreamResult {
  readonly bytes: number;
  /** Time inside the loop, worker clock; t0/t1 absolute (ms since the epoch). */
  readonly ms: number;
  /** The device thread's on-CPU time inside the loop (NaN off Linux): ms - cpuMs is time it waited for a core. */
  readonly cpuMs: number;
  readonly t0: number;
  readonly t1: number;
  readonly faults: number;
  readonly pagesFaulted: number;
  readonly refaults: number;
  readonly retries: number;
  /** Of the faults, those a fault-ahead request had already answered. */
  readonly prefetchHits: number;
}

/** workers/camera.ts: the peer queue CAPTURE_CHAINED drives (the engine's SQ, by VA, and its tail doorbell). */
export interface CameraOps {
  chain: Op<{ readonly sqVa: number; readonly entries: number; readonly doorbell: number }>;
}

/** workers/accelerator.ts (src/devices/accelerator_abi.ts). */
export interface AcceleratorOps {
  'acc-counters': Op<None, Omit<AccCounters, 'errno'>>;
}

/** workers/nic.ts (src/devices/nic_abi.ts). */
export interface NicOps {
  'nic-counters': Op<None, Omit<NicCounters, 'errno'>>;
  /** NicIoLog entries [first, first + count); defaults: from 0, to the end. */
  'nic-iolog': Op<{ readonly first?: number; readonly count?: number }, { readonly log: Int32Array }>;
}

/** workers/nvme.ts (src/devices/nvme_abi.ts has the meaning of each field). */
export interface NvmeOps {
  'nvme-format': Op<{ readonly blockOff: number; readonly blocks: number }, { readonly blockBytes: number }>;
  'nvme-create-cmb-queue': Op<{ readonly qid: number; readonly entries: number; readonly sqOff: number; readonly cqOff: number; readonly dataOff: number; readonly dataBytes: number; readonly msiAddr: number }>;
  'nvme-counters': Op<None, Omit<NvmeCounters, 'errno'>>;
}

/** Counters a mirror READ/WRITE reports (also, as far as it got, when it fails). */
export interface MirrorIoCounters {
  /** dmirror_fault() calls (one per miss, however many pages it faults in). */
  readonly faults: number;
  /** Page requests to the kernel (64 pages each). */
  readonly requests: number;
  readonly pagesFaulted: number;
  /** Pages moved. */
  readonly cpages: number;
}

/** What READ and WRITE answer: the counters, and the pages read (null for a WRITE). */
export interface MirrorIoReply extends MirrorIoCounters {
  readonly data: Uint8Array | null;
}

/** workers/mirror.ts (lib/test_hmm.c's dmirror). */
export interface MirrorOps {
  attach: Op<BindInfo & { readonly bounceOff: number; readonly bouncePages: number }>;
  read: Op<{ readonly va: number; readonly npages: number }, MirrorIoReply, MirrorIoCounters>;
  /** data is exactly npages pages (else EINVAL), as HMM_DMIRROR_WRITE copies npages pages. */
  write: Op<{ readonly va: number; readonly npages: number; readonly data: Uint8Array }, MirrorIoReply, MirrorIoCounters>;
  counters: Op<None, { readonly requests: number; readonly pagesFaulted: number; readonly retries: number; readonly tlb: number; readonly iotlb: number }>;
  detach: Op<None>;
}

/** One own buffer's shadow in an x-stress device: its epoch and the seqs each page may hold (null: never written this epoch). */
export interface StressShadow {
  readonly buf: number;
  readonly epoch: number;
  readonly acc: (number[] | null)[];
}

/** workers/x_stress.ts (`peervma stress`). */
export interface StressOps {
  /** The job table (src/shm/stress_layout.ts), this importer's slot in it, and the run's seed. */
  'stress-attach': Op<{ readonly shm: SharedArrayBuffer; readonly slot: number; readonly seed: number }>;
  'stress-shadow': Op<None, { readonly shadows: StressShadow[] }>;
}

/** Every command table; op names are unique across kinds. */
export interface DeviceOps extends RuntimeOps, CameraOps, AcceleratorOps, NicOps, NvmeOps, MirrorOps, StressOps {}

export type DeviceOp = keyof DeviceOps;

/** A command: `op` and its arguments, flat. DeviceCmd (no parameter) is the union of all. */
export type DeviceCmd<O extends DeviceOp = DeviceOp> = { [K in O]: { readonly op: K } & DeviceOps[K]['args'] }[O];

/** A refusal: an errno name and a message a person can read (what, where, why). */
export interface DeviceCmdError {
  readonly errno: Errno;
  readonly message: string;
}

/** The success answer to a command of `op`: errno 0 and its reply fields. */
export type DeviceOk<O extends DeviceOp = DeviceOp> = { readonly errno: 0 } & DeviceOps[O]['reply'];

/** The answer to a command of `op`: errno 0 and its reply fields, or a refusal. */
export type DeviceReply<O extends DeviceOp = DeviceOp> = DeviceOk<O> | (DeviceCmdError & Partial<DeviceOps[O]['fail']>);

/** What a worker serves: one handler per op of `O`, each checked against its row. */
export type CmdHandlers<O extends DeviceOp> = { readonly [K in O]: (cmd: DeviceCmd<K>) => DeviceReply<K> };
