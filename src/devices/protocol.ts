/**
 * Control-plane protocol between the kernel (main thread) and a device
 * worker, carried by comlink. Types only, as comlink's protocol.ts.
 *
 * Slow path only: configure, queue creation, start, stop, error log. The
 * data plane (doorbells, DMA, invalidations, completions) never goes
 * through here; it is SAB + Atomics (src/shm/).
 */
import type { MachineShmDesc } from '../shm/phys_mem.js';

/** Everything a worker needs to become a device. Structured-clonable. */
export interface DeviceConfig {
  readonly name: string;
  readonly index: number;
  readonly kind: string;
  readonly shm: MachineShmDesc;
  /** Kind-specific properties, already validated against the kind's property table. */
  readonly props: Readonly<Record<string, unknown>>;
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
  /** Device errors logged since start (bad DMA addresses and the like). */
  errors(): DeviceErrorRecord[];
  /**
   * Kind-specific command (issue 5: the mirror device's attach/READ/WRITE/
   * counters). Runs synchronously in the worker; the command may wait on
   * SAB words (page requests) while it keeps serving invalidations.
   */
  deviceCmd(cmd: DeviceCmd): DeviceCmdResult;
}

/** A kind-specific command: `op` names it, the rest is plain structured-clonable data. */
export interface DeviceCmd {
  readonly op: string;
  readonly [arg: string]: unknown;
}

/** Answer to a DeviceCmd: errno 0 on success, else an errno name and a message. */
export interface DeviceCmdResult {
  readonly errno: 0 | string;
  readonly message?: string;
  readonly [field: string]: unknown;
}
