/**
 * The NIC's NVMe-driving engine (RFC workload (1)); filled in with the
 * nvme device kind. Until then it claims no opcode and no control command.
 */
import type { SqCommand } from '../src/shm/ring.js';
import type { DeviceCmd, DeviceCmdResult } from '../src/devices/protocol.js';
import type { CommandResult } from './runtime/device_queues.js';
import type { DeviceContext } from './runtime/device_model.js';

export interface NicNvmeEngine {
  /** Executes an NVMe-stream opcode; null when the opcode is not one of its own. */
  execute(cmd: SqCommand): CommandResult | null;
  control(cmd: DeviceCmd): DeviceCmdResult | null;
  counters(): Record<string, number>;
}

export function createNicNvmeEngine(_ctx: DeviceContext, _words: Int32Array): NicNvmeEngine {
  return { execute: () => null, control: () => null, counters: () => ({}) };
}
