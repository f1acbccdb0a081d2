/**
 * The camera: renders the sensor pattern (src/workloads/camera_chain/
 * frame_pattern.ts) into its line buffer and DMAs it to wherever its
 * CAPTURE command points — system RAM in bounce mode, a peer's BAR in P2P
 * mode. It never knows which: the bus decides.
 *
 * Command CAPTURE: dst = frame buffer bus address, len = width*height*4,
 * args = [frame, seed, width].
 */
import { CqStatus, type SqCommand } from '../src/shm/ring.js';
import { renderPattern } from '../src/workloads/camera_chain/frame_pattern.js';
import type { DeviceContext, DeviceModel } from './runtime/device_model.js';
import { DeviceStats } from '../src/shm/device_ctl.js';

export const CAMERA_OP_CAPTURE = 1;
/** Bytes rendered per DMA burst; the line buffer holds two. */
const BURST = 64 * 1024;

export function createCamera(ctx: DeviceContext): DeviceModel {
  const mem = ctx.self.mem;
  if (!mem || mem.length < 2 * BURST) throw new Error(`${ctx.self.name}: camera needs ${2 * BURST} bytes of line buffer, has ${mem?.length ?? 0}`);
  const line = new Uint32Array(mem.buffer, mem.byteOffset, (2 * BURST) / 4);
  let half = 0;
  return {
    execute(cmd: SqCommand) {
      if (cmd.opcode !== CAMERA_OP_CAPTURE) return { status: CqStatus.InvalidOpcode, result: ctx.logError(`${ctx.self.name}: unknown opcode ${cmd.opcode}`) };
      const [frame, seed, width] = cmd.args;
      if (cmd.len % 4 !== 0 || width <= 0) return { status: CqStatus.InvalidField, result: ctx.logError(`${ctx.self.name}: CAPTURE of ${cmd.len} bytes, width ${width}`) };
      for (let off = 0; off < cmd.len; off += BURST) {
        const n = Math.min(BURST, cmd.len - off);
        const t0 = performance.now();
        const words = line.subarray((half * BURST) / 4, (half * BURST + n) / 4);
        renderPattern(words, seed, frame, off / 4, width);
        ctx.self.stats[DeviceStats.computeNs] += (performance.now() - t0) * 1e6;
        const err = ctx.dma.write(cmd.dst + off, half * BURST, n);
        if (err) return { status: CqStatus.DataTransferError, result: ctx.logError(err) };
        half ^= 1;
      }
      return { status: CqStatus.Success, result: frame };
    },
  };
}
