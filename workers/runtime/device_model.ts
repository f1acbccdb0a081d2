/**
 * What a device kind implements, and the context the runtime gives it.
 * One file per device kind under workers/ builds a DeviceModel from a
 * DeviceContext (compare QEMU's TypeInfo.class_init / realize).
 */
import type { BusDecoder } from '../../src/shm/bus_map.js';
import type { DeviceShm, MachineShm } from '../../src/shm/phys_mem.js';
import type { SqCommand } from '../../src/shm/ring.js';
import type { DeviceCmd, DeviceCmdResult } from '../../src/devices/protocol.js';
import type { DmaEngine } from './dma_engine.js';
import type { CommandResult } from './device_queues.js';
import type { InvalidationPort } from './invalidation.js';

export interface DeviceContext {
  readonly self: DeviceShm;
  readonly shm: MachineShm;
  readonly bus: BusDecoder;
  readonly dma: DmaEngine;
  readonly inv: InvalidationPort;
  readonly props: Readonly<Record<string, unknown>>;
  /** Records a device error; returns its sequence number (carried in the completion's result). */
  logError(message: string): number;
}

export interface DeviceModel {
  /** Executes one queue command. */
  execute(cmd: SqCommand, qid: number): CommandResult;
  /** Work the device does on its own (not queue-driven); true when it made progress. */
  poll?(): boolean;
  /** Called once when the device is started. */
  start?(): void;
  /** Kind-specific control command (DeviceEndpointApi.deviceCmd). */
  control?(cmd: DeviceCmd): DeviceCmdResult;
}

export type DeviceFactory = (ctx: DeviceContext) => DeviceModel;
