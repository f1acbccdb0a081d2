/**
 * RFC workload (4), bounce mode: camera -> system RAM -> colour correction
 * -> the output process's memory, with the kernel passing every frame
 * along (the path the RFC wants to remove; the P2P path comes with the
 * workloads issue).
 *
 *   kernel                         cam0                    cc0
 *   ------                         ----                    ---
 *   CAPTURE(f, in[b])   ------->   render + DMA to in[b]
 *                       <-------   CQE + MSI
 *   PROCESS(in[b] -> out[s]) -----------------------------> DMA in, matrix+LUT, DMA out
 *                       <------------------------------------ CQE + MSI
 *   verify(out[s]) on piscina; then in[b] and out[s] are reused
 *
 * Invariant: a frame buffer is rewritten only after its last reader
 * completed; an output slot only after its frame was verified.
 */
import { Piscina } from 'piscina';
import { DeviceError, VerifyError } from '../../errors.js';
import { compiledModule } from '../../devices/worker_entry.js';
import type { Device, Machine } from '../../devices/machine.js';
import { HostQueue } from '../../drivers/host_queue.js';
import { PAGE_SIZE } from '../../shm/constants.js';
import { stageTimes, trafficTotals } from '../accounting.js';
import type { StageTimes } from '../workload.js';
import { CqStatus } from '../../shm/ring.js';
import type { Extent } from '../../kernel/page_alloc.js';
import type { CameraChainWorkload } from './schema.js';
import { gammaLut, type ColourParams } from './colour.js';
import type { VerifyResult, VerifyTask } from './verify_task.js';

/** Opcodes of workers/camera.ts and workers/colour_correction.ts. */
const OP_CAPTURE = 1;
const OP_PROCESS = 1;
/** Output frames the viewer process holds; a slot is reused once its frame is verified. */
const OUTPUT_SLOTS = 3;

export interface ChainResult {
  readonly frames: number;
  readonly verified: number;
  readonly frameBytes: number;
  readonly payloadBytes: number;
  readonly wallMs: number;
  /** Bytes every device read from or wrote to system RAM. */
  readonly ramBytes: number;
  /** Bytes moved device to device (P2P). */
  readonly p2pBytes: number;
  /** Commands the kernel submitted: its interventions in the data path. */
  readonly hostCommands: number;
  readonly mismatches: readonly VerifyResult[];
  readonly devices: readonly StageTimes[];
}

interface Slot {
  readonly pieces: { offset: number; len: number }[];
  busy: boolean;
}

export function colourParams(props: Readonly<Record<string, unknown>>): ColourParams {
  return { matrix: props.matrix as number[], lut: gammaLut(props.gamma as [number, number, number]) };
}

/** Turns a failed completion into the device's own error message. */
async function completionError(dev: Device, status: number, result: number): Promise<DeviceError> {
  const log = await dev.handle.call('errors');
  const rec = log.find((e) => e.seq === result);
  return new DeviceError(dev.spec.name, 'device-error', rec?.message ?? `completion status ${status}`);
}

export async function runCameraChain(machine: Machine, w: CameraChainWorkload, seed: number): Promise<ChainResult> {
  const cam = machine.device(w.camera);
  const cc = machine.device(w.corrector);
  const params = colourParams(cc.spec.props);
  const frameBytes = w.width * w.height * 4;
  const framePages = Math.ceil(frameBytes / PAGE_SIZE);
  const extents: Extent[] = [];
  const pool = new Piscina({ filename: compiledModule('src/workloads/camera_chain/verify_task'), maxThreads: 2, idleTimeout: 1000 });
  try {
    const camQ = await HostQueue.create(machine, cam, 0, w.queueDepth);
    const ccQ = await HostQueue.create(machine, cc, 0, w.queueDepth);
    const inBufs = Array.from({ length: w.buffers }, () => machine.ram.allocContig(framePages));
    extents.push(...inBufs);
    const slots: Slot[] = Array.from({ length: OUTPUT_SLOTS }, () => {
      const ext = machine.ram.allocPages(framePages);
      extents.push(...ext);
      let left = frameBytes;
      const pieces = ext.map((e) => {
        const len = Math.min(left, e.count * PAGE_SIZE);
        left -= len;
        return { offset: e.start * PAGE_SIZE, len };
      });
      return { pieces: pieces.filter((p) => p.len > 0), busy: false };
    });
    await machine.start();
    const t0 = performance.now();

    const freeBufs = inBufs.map((_, i) => i);
    const captured: { frame: number; buf: number }[] = [];
    const piecesLeft = new Map<number, number>();
    const mismatches: VerifyResult[] = [];
    const checks: Promise<void>[] = [];
    let nextCapture = 0;
    let verified = 0;
    let hostCommands = 0;

    const verify = (frame: number, slot: Slot) => {
      const task: VerifyTask = { ram: machine.shm.desc.ram, pieces: slot.pieces, seed, frame, width: w.width, height: w.height, params };
      checks.push(
        (pool.run(task) as Promise<VerifyResult>).then((r) => {
          if (r.mismatchAt >= 0) mismatches.push(r);
          verified++;
          slot.busy = false;
          machine.kickHost();
        }),
      );
    };

    const pump = () => {
      while (freeBufs.length > 0 && nextCapture < w.frames && !camQ.full) {
        const buf = freeBufs.shift()!;
        camQ.submit({ opcode: OP_CAPTURE, src: 0, dst: inBufs[buf].start * PAGE_SIZE, len: frameBytes, args: [nextCapture, seed, w.width] }, { frame: nextCapture, buf });
        hostCommands++;
        nextCapture++;
      }
      while (captured.length > 0) {
        const slotIdx = slots.findIndex((s) => !s.busy);
        const slot = slots[slotIdx];
        if (!slot || ccQ.outstanding + slot.pieces.length >= ccQ.entries) break;
        const { frame, buf } = captured.shift()!;
        slot.busy = true;
        piecesLeft.set(frame, slot.pieces.length);
        let off = 0;
        for (const p of slot.pieces) {
          ccQ.submit({ opcode: OP_PROCESS, src: inBufs[buf].start * PAGE_SIZE + off, dst: p.offset, len: p.len, args: [frame] }, { frame, buf, slot: slotIdx });
          hostCommands++;
          off += p.len;
        }
      }
    };

    for (;;) {
      const seen = Atomics.load(machine.shm.hostIrq, 0);
      for (const { c, tag } of camQ.reap()) {
        if (c.status !== CqStatus.Success) throw await completionError(cam, c.status, c.result);
        captured.push(tag as { frame: number; buf: number });
      }
      for (const { c, tag } of ccQ.reap()) {
        if (c.status !== CqStatus.Success) throw await completionError(cc, c.status, c.result);
        const t = tag as { frame: number; buf: number; slot: number };
        const left = piecesLeft.get(t.frame)! - 1;
        piecesLeft.set(t.frame, left);
        if (left === 0) {
          piecesLeft.delete(t.frame);
          freeBufs.push(t.buf);
          verify(t.frame, slots[t.slot]);
        }
      }
      pump();
      if (verified === w.frames) break;
      await machine.waitHostIrq(seen, () => [
        { dev: cam, outstanding: camQ.outstanding },
        { dev: cc, outstanding: ccQ.outstanding },
      ]);
    }
    await Promise.all(checks);
    const wallMs = performance.now() - t0;
    const devices = [stageTimes(cam), stageTimes(cc)];
    return {
      frames: w.frames,
      verified,
      frameBytes,
      payloadBytes: frameBytes * w.frames,
      wallMs,
      ...trafficTotals(devices),
      hostCommands,
      mismatches: mismatches.sort((a, b) => a.frame - b.frame),
      devices,
    };
  } finally {
    await pool.destroy();
    for (const e of extents) machine.ram.freeExtent(e);
  }
}

/** Throws a VerifyError naming the first bad frames and byte offsets. */
export function assertChainExact(r: ChainResult): void {
  if (r.mismatches.length === 0) return;
  const lines = r.mismatches.slice(0, 5).map((m) => `frame ${m.frame}: byte ${m.mismatchAt} is 0x${m.got.toString(16)}, reference 0x${m.expected.toString(16)} (${m.mismatches} byte(s) differ)`);
  throw new VerifyError(`${r.mismatches.length} of ${r.frames} frame(s) differ from the CPU reference:\n  ${lines.join('\n  ')}`);
}
