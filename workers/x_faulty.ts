/**
 * A device that fails on purpose, for fault-containment tests and for
 * users who want to see what a crashed device looks like. The `x-` prefix
 * marks it unstable, as QEMU does for test-only knobs.
 *
 * Properties: fault = throw | hang | exit, when = start | command.
 * Any command is otherwise completed successfully (a DMA copy src -> dst).
 */
import { CqStatus, type SqCommand } from '../src/shm/ring.js';
import type { DeviceContext, DeviceModel } from './runtime/device_model.js';

function misbehave(ctx: DeviceContext): never {
  const name = ctx.self.name;
  switch (ctx.props.fault) {
    case 'throw':
      throw new Error(`${name}: injected fault (x-faulty, fault: throw)`);
    case 'exit':
      process.exit(3);
    case 'hang':
    default:
      // Busy forever: only worker.terminate() ends this.
      for (;;);
  }
}

export function createFaulty(ctx: DeviceContext): DeviceModel {
  return {
    // The device loop never yields to timers while it runs, so 'start'
    // faults fire from the first pass of the loop, as hardware would.
    poll() {
      if (ctx.props.when === 'start') misbehave(ctx);
      return false;
    },
    execute(cmd: SqCommand) {
      if (ctx.props.when === 'command') misbehave(ctx);
      const err = ctx.dma.copy(cmd.dst, cmd.src, cmd.len);
      return err ? { status: CqStatus.DataTransferError, result: ctx.logError(err) } : { status: CqStatus.Success, result: 0 };
    },
  };
}
