/**
 * The camera: renders the sensor pattern (src/devices/models/
 * simd_kernels.ts, WebAssembly SIMD; frame_pattern.ts for bursts that are
 * not whole groups of 4 pixels) into its line buffer and DMAs it out.
 *
 * CAPTURE (bounce mode): dst = frame buffer bus address, len =
 * width*height*4, args = CAM_ARG_FRAME, _SEED, _WIDTH. The camera never knows what
 * is at dst: the bus decides.
 *
 * CAPTURE_CHAINED (P2P mode, RFC use cases [A] + [B]): the camera is bound
 * to a process (ImporterBinding) in which the colour-correction engine's
 * memory is mapped (a device-special VMA). It writes the frame by virtual
 * address straight into the engine's input buffer (through the engine's
 * BAR; faulting and refaulting as the engine's driver recycles BAR slots),
 * then drives the engine's queue itself: it writes a PROCESS_LOCAL entry
 * into the engine's submission ring (also in the engine's BAR) and rings
 * the engine's doorbell with a DMA write to its BAR0. No kernel on the
 * path. dst = input buffer VA, src = where the engine must write the
 * result (bus address, or a VA when the engine is bound to the process),
 * args = CAM_ARG_* (frame, seed, width, input offset in the engine's
 * memory, the engine's PROCESS_LOCAL flags). The ring is set once with
 * deviceCmd 'chain'.
 *
 * Invariant: the doorbell is rung only after the whole frame and the ring
 * entry were written (DMA is in order on one engine).
 */
import { CqStatus, SQE_BYTES, writeSqe, type SqCommand } from '../src/shm/ring.js';
import { renderPattern } from '../src/devices/models/frame_pattern.js';
import { renderPatternSimd } from '../src/devices/models/simd_kernels.js';
import type { CameraOps, CmdHandlers } from '../src/devices/protocol.js';
import type { DeviceContext, DeviceModel } from './runtime/device_model.js';
import { DeviceStats } from '../src/shm/device_ctl.js';
import { CAM_ARG_CC_FLAGS, CAM_ARG_FRAME, CAM_ARG_INPUT, CAM_ARG_NEXT_PAGES, CAM_ARG_SEED, CAM_ARG_WIDTH, CAMERA_OP_CAPTURE, CAMERA_OP_CAPTURE_CHAINED, CC_ARG_FLAGS, CC_ARG_FRAME, CC_OP_PROCESS_LOCAL } from '../src/devices/camera_chain_abi.js';
import { TraceEvent, traceSink } from '../src/shm/trace_ring.js';
import { PAGE_SIZE } from '../src/shm/constants.js';
import { faultAheadInto } from './runtime/next_buffer_ahead.js';

/** Bytes rendered per DMA burst; the line buffer holds two. */
const BURST = 64 * 1024;
/** Local scratch after the line buffers: one ring entry, then the doorbell value. */
const SQE_SCRATCH = 2 * BURST;
const DOORBELL_SCRATCH = SQE_SCRATCH + SQE_BYTES;

/** The peer queue the camera drives in chained mode. */
interface Chain {
  readonly sqVa: number;
  readonly entries: number;
  /** Bus address of the engine's SQ tail doorbell. */
  readonly doorbell: number;
  tail: number;
}

export function createCamera(ctx: DeviceContext): DeviceModel {
  const mem = ctx.self.mem;
  if (!mem || mem.length < DOORBELL_SCRATCH + 4) throw new Error(`${ctx.self.name}: camera needs ${DOORBELL_SCRATCH + 4} bytes of local memory, has ${mem?.length ?? 0}`);
  const line = new Uint32Array(mem.buffer, mem.byteOffset, (2 * BURST) / 4);
  const scratch = new Int32Array(mem.buffer, mem.byteOffset + SQE_SCRATCH, SQE_BYTES / 4 + 1);
  let half = 0;
  let chain: Chain | null = null;
  const fail = (status: number, msg: string) => ({ status, result: ctx.logError(msg) });

  /** Renders frame `frame` and hands each burst to `out(offset, localOff, n)`. */
  function render(cmd: SqCommand, out: (off: number, localOff: number, n: number) => string | null): string | null {
    const frame = cmd.args[CAM_ARG_FRAME];
    const seed = cmd.args[CAM_ARG_SEED];
    const width = cmd.args[CAM_ARG_WIDTH];
    for (let off = 0; off < cmd.len; off += BURST) {
      const n = Math.min(BURST, cmd.len - off);
      const t0 = performance.now();
      const px = line.subarray((half * BURST) / 4, (half * BURST + n) / 4);
      // WebAssembly SIMD for whole groups of 4 pixels in a row (every shipped size); JS otherwise.
      if (!renderPatternSimd(px, seed, frame, off / 4, width)) renderPattern(px, seed, frame, off / 4, width);
      ctx.self.stats[DeviceStats.computeNs] += (performance.now() - t0) * 1e6;
      traceSink.w?.emit(TraceEvent.Compute, performance.timeOrigin + t0, performance.now() - t0, n);
      const err = out(off, half * BURST, n);
      if (err) return err;
      half ^= 1;
    }
    return null;
  }

  /** Writes a PROCESS_LOCAL entry into the engine's ring and rings its doorbell. */
  function submitToEngine(c: Chain, cmd: SqCommand): string | null {
    const frame = cmd.args[CAM_ARG_FRAME];
    const args = [0, 0];
    args[CC_ARG_FRAME] = frame;
    args[CC_ARG_FLAGS] = cmd.args[CAM_ARG_CC_FLAGS];
    writeSqe(scratch, 0, { opcode: CC_OP_PROCESS_LOCAL, cid: frame & 0xffff, src: cmd.args[CAM_ARG_INPUT], dst: cmd.src, len: cmd.len, args });
    const err = ctx.va().write(c.sqVa + c.tail * SQE_BYTES, SQE_SCRATCH, SQE_BYTES);
    if (err) return err;
    c.tail = (c.tail + 1) % c.entries;
    scratch[SQE_BYTES / 4] = c.tail;
    return ctx.dma.write(c.doorbell, DOORBELL_SCRATCH, 4);
  }

  return {
    execute(cmd: SqCommand) {
      const width = cmd.args[CAM_ARG_WIDTH];
      if (cmd.len % 4 !== 0 || width <= 0) return fail(CqStatus.InvalidField, `${ctx.self.name}: CAPTURE of ${cmd.len} bytes, width ${width}`);
      if (cmd.opcode === CAMERA_OP_CAPTURE) {
        const err = render(cmd, (off, local, n) => ctx.dma.write(cmd.dst + off, local, n));
        return err ? fail(CqStatus.DataTransferError, err) : { status: CqStatus.Success, result: cmd.args[CAM_ARG_FRAME] };
      }
      if (cmd.opcode === CAMERA_OP_CAPTURE_CHAINED) {
        if (!chain) return fail(CqStatus.InvalidField, `${ctx.self.name}: CAPTURE_CHAINED before deviceCmd 'chain' named the engine's queue`);
        const c = chain;
        const end = cmd.dst + cmd.len;
        const va = ctx.va();
        const rendered = render(cmd, (off, local, n) => va.write(cmd.dst + off, local, n, end));
        // The frame is written: fault the next frame's buffer in while this one goes to the engine.
        const next = cmd.args[CAM_ARG_NEXT_PAGES];
        if (!rendered && next !== 0) faultAheadInto(va.tlb, cmd.dst + next * PAGE_SIZE, cmd.len, true);
        const err = rendered ?? submitToEngine(c, cmd);
        return err ? fail(CqStatus.DataTransferError, err) : { status: CqStatus.Success, result: cmd.args[CAM_ARG_FRAME] };
      }
      return fail(CqStatus.InvalidOpcode, `${ctx.self.name}: unknown opcode ${cmd.opcode}`);
    },
    commands: {
      chain: (cmd) => {
        chain = { sqVa: cmd.sqVa, entries: cmd.entries, doorbell: cmd.doorbell, tail: 0 };
        return { errno: 0 };
      },
    } satisfies CmdHandlers<keyof CameraOps>,
  };
}
