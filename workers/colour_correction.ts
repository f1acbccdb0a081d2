/**
 * The colour-correction engine: DMAs a frame in through its line buffers,
 * applies the 3x3 Q8 matrix and the per-channel gamma LUT, and DMAs the
 * result out. The function is defined in src/devices/camera_chain_abi.ts
 * (ColourParams); the checker's colourReference (src/workloads/reference/
 * colour.ts) computes it plainly, this engine differently: four pixels at a
 * time in WebAssembly SIMD (src/devices/models/simd_kernels.ts), the last
 * < 4 through per-channel product and clamp-and-gamma tables
 * (src/devices/models/colour_tables.ts), so the checker's reference is an
 * independent implementation.
 *
 * Command PROCESS: src, dst, len = width*height*4, args[CC_ARG_FRAME] = frame.
 * Command PROCESS_LOCAL: the same with src a byte offset in this device's
 * own memory — the input a peer (the camera) wrote through our BAR; with
 * CC_F_DST_VA in args[CC_ARG_FLAGS], dst is a process virtual address (the engine is
 * bound to the process; a final buffer in a third device's BAR).
 * Properties: matrix (9 ints, Q8), lut (768 ints), x-corrupt-frame/-offset.
 */
import { CqStatus, type SqCommand } from '../src/shm/ring.js';
import { DeviceStats } from '../src/shm/device_ctl.js';
import type { DeviceContext, DeviceModel } from './runtime/device_model.js';
import { TraceEvent, traceSink } from '../src/shm/trace_ring.js';

import { CC_ARG_FLAGS, CC_ARG_FRAME, CC_F_DST_VA, CC_OP_PROCESS, CC_OP_PROCESS_LOCAL } from '../src/devices/camera_chain_abi.js';
import { buildColourTables, colourTransform, type ColourTables } from '../src/devices/models/colour_tables.js';
import { SimdColour } from '../src/devices/models/simd_kernels.js';
/** Bytes per line-buffer burst; input and output buffers of this size each. */
const BURST = 64 * 1024;

/** The engine's two implementations: WebAssembly SIMD for groups of 4 pixels, JS tables for what is left. */
interface Engine {
  readonly simd: SimdColour;
  readonly tables: ColourTables;
}

function buildEngine(props: Readonly<Record<string, unknown>>): Engine {
  const m = props.matrix as number[];
  const lutIn = props.lut as number[];
  if (!Array.isArray(m) || m.length !== 9 || !Array.isArray(lutIn) || lutIn.length !== 768) throw new Error('colour-correction: props need matrix[9] and lut[768]');
  return { simd: new SimdColour(m, lutIn), tables: buildColourTables(m, lutIn) };
}

/** Pixels inp -> out: SIMD for the whole groups of 4, the JS tables for the rest. */
function transform(inp: Int32Array, out: Int32Array, e: Engine): void {
  const done = e.simd.transform(inp, out);
  if (done < inp.length) colourTransform(inp.subarray(done), out.subarray(done), e.tables);
}

export function createColourCorrection(ctx: DeviceContext): DeviceModel {
  const mem = ctx.self.mem;
  if (!mem || mem.length < 2 * BURST) throw new Error(`${ctx.self.name}: colour correction needs ${2 * BURST} bytes of line buffer, has ${mem?.length ?? 0}`);
  const engine = buildEngine(ctx.props);
  const inBuf = new Int32Array(mem.buffer, mem.byteOffset, BURST / 4);
  const outBuf = new Int32Array(mem.buffer, mem.byteOffset + BURST, BURST / 4);
  const outBytes = new Uint8Array(mem.buffer, mem.byteOffset + BURST, BURST);
  const stats = ctx.self.stats;
  // Test knob (x- prefix): flip one output byte of one frame, so tests can
  // prove the end-to-end check catches a device that corrupts data.
  const corruptFrame = ctx.props['x-corrupt-frame'] as number | undefined;
  const corruptOffset = (ctx.props['x-corrupt-offset'] as number | undefined) ?? 0;
  return {
    execute(cmd: SqCommand) {
      const local = cmd.opcode === CC_OP_PROCESS_LOCAL;
      // A final buffer in a third device's BAR, mapped in the process the engine is bound to.
      const toVa = local && (cmd.args[CC_ARG_FLAGS] & CC_F_DST_VA) !== 0;
      if (cmd.opcode !== CC_OP_PROCESS && !local) return { status: CqStatus.InvalidOpcode, result: ctx.logError(`${ctx.self.name}: unknown opcode ${cmd.opcode}`) };
      if (cmd.len % 4 !== 0) return { status: CqStatus.InvalidField, result: ctx.logError(`${ctx.self.name}: PROCESS of ${cmd.len} bytes is not whole pixels`) };
      if (local && (cmd.src % 4 !== 0 || cmd.src + cmd.len > mem.length)) return { status: CqStatus.InvalidField, result: ctx.logError(`${ctx.self.name}: PROCESS_LOCAL of [${cmd.src}, +${cmd.len}) is outside its ${mem.length}-byte memory`) };
      for (let off = 0; off < cmd.len; off += BURST) {
        const n = Math.min(BURST, cmd.len - off);
        let inp = inBuf;
        if (local) {
          inp = new Int32Array(mem.buffer, mem.byteOffset + cmd.src + off, n / 4);
          stats[DeviceStats.bytesLocal] += n;
        } else {
          const inErr = ctx.dma.read(cmd.src + off, 0, n);
          if (inErr) return { status: CqStatus.DataTransferError, result: ctx.logError(inErr) };
        }
        const t0 = performance.now();
        transform(inp.subarray(0, n / 4), outBuf, engine);
        stats[DeviceStats.computeNs] += (performance.now() - t0) * 1e6;
        traceSink.w?.emit(TraceEvent.Compute, performance.timeOrigin + t0, performance.now() - t0, n);
        if (cmd.args[CC_ARG_FRAME] === corruptFrame && corruptOffset >= off && corruptOffset < off + n) outBytes[corruptOffset - off] ^= 0x01;
        const outErr = toVa ? ctx.va().write(cmd.dst + off, BURST, n, cmd.dst + cmd.len) : ctx.dma.write(cmd.dst + off, BURST, n);
        if (outErr) return { status: CqStatus.DataTransferError, result: ctx.logError(outErr) };
      }
      return { status: CqStatus.Success, result: cmd.args[CC_ARG_FRAME] };
    },
  };
}
