/**
 * What a device kind implements, and the context the runtime gives it.
 * One file per device kind under workers/ builds a DeviceModel from a
 * DeviceContext (compare QEMU's TypeInfo.class_init / realize).
 */
import type { SqCommand } from '../../src/shm/ring.js';
import type { DeviceCmd, DeviceOp, DeviceReply } from '../../src/devices/protocol.js';
import type { CommandResult } from './device_queues.js';
import type { DeviceCtxCore } from './device_ctx.js';
import type { VaSpace } from './va_space.js';

export interface DeviceContext extends DeviceCtxCore {
  /** The process this device is bound to (ImporterBinding.bind); throws when it is not bound. */
  va(): VaSpace;
}

export interface DeviceModel {
  /** Executes one queue command. */
  execute(cmd: SqCommand, qid: number): CommandResult;
  /** Work the device does on its own (not queue-driven); true when it made progress. */
  poll?(): boolean;
  /** Called once when the device is started. */
  start?(): void;
  /**
   * Kind-specific control commands (DeviceEndpointApi.deviceCmd): one
   * handler per op of the kind's table in src/devices/protocol.ts (a
   * CmdHandlers<keyof XxxOps>), each checked against its row.
   */
  commands?: CmdTable;
}

/** Handlers of some ops; a kind's CmdHandlers<keyof XxxOps> is one. */
export type CmdTable = { readonly [K in DeviceOp]?: (cmd: DeviceCmd<K>) => DeviceReply<K> };

/** Runs the handler `table` has for cmd.op; null when it has none. */
export function serveCmd<K extends DeviceOp>(table: CmdTable, cmd: DeviceCmd<K>): DeviceReply<K> | null {
  const handler: ((cmd: DeviceCmd<K>) => DeviceReply<K>) | undefined = table[cmd.op];
  return handler ? handler(cmd) : null;
}

export type DeviceFactory = (ctx: DeviceContext) => DeviceModel;
