/**
 * RFC workload (4): camera -> colour correction -> the output process's
 * memory, in two modes.
 *
 * bounce (as without the RFC): every frame crosses system RAM and the
 * kernel passes it along.
 *
 *   kernel                         cam0                    cc0
 *   CAPTURE(f, in[b])   ------->   render + DMA to RAM in[b]
 *                       <-------   CQE + MSI
 *   PROCESS(in[b] -> out[s]) -----------------------------> DMA in from RAM, transform, DMA out
 *                       <------------------------------------ CQE + MSI
 *
 * p2p ([A] + [B]): cc0's driver exports its memory (input buffers and its
 * submission ring) as a device-special VMA of the process, to cam0 only;
 * cam0 is bound to the process and writes by VA straight into cc0's BAR,
 * then drives cc0's queue itself. cc0's BAR window is smaller than the
 * buffers, so its driver recycles BAR slots while frames flow and cam0 is
 * invalidated mid-stream (and refaults).
 *
 *   kernel                         cam0                    cc0
 *   CAPTURE_CHAINED(f, va[b]) ---> render + DMA by VA into cc0's BAR
 *                                  SQE -> cc0's ring (BAR), doorbell (BAR0) --> transform from local memory,
 *                                                                               DMA out
 *                       <------------------------------------------------------ CQE + MSI
 *
 * Both: when a frame lands, the kernel copies it out of its output slot
 * (the viewer keeping the frame) and reuses the slot; after the stream,
 * every kept frame is checked against the CPU reference (on piscina),
 * outside the timed window. Invariant: an input buffer is rewritten only
 * after cc0 completed the frame in it; an output slot only after its frame
 * was copied out.
 */
import { Piscina } from 'piscina';
import { DeviceError, LimitError } from '../../errors.js';
import { MAX_MEMORY_BYTES } from '../../devices/limits.js';
import { MiB } from '../memcpy_baseline.js';
import { WORKER_EXEC_ARGV, compiledModule } from '../../devices/worker_entry.js';
import type { Device, Machine } from '../../devices/machine.js';
import { CAM_ARG_CC_FLAGS, CAM_ARG_FRAME, CAM_ARG_INPUT, CAM_ARG_NEXT_PAGES, CAM_ARG_SEED, CAM_ARG_WIDTH, CAM_ARGS, CAMERA_OP_CAPTURE, CAMERA_OP_CAPTURE_CHAINED, CC_ARG_FRAME, CC_F_DST_VA, CC_OP_PROCESS, type ColourParams } from '../../devices/camera_chain_abi.js';
import { completionError, HostCompletionQueue, HostQueue } from '../../drivers/host_queue.js';
import { BarExporter } from '../../drivers/bar_exporter.js';
import { ImporterBinding } from '../../drivers/importer_binding.js';
import { PAGE_SIZE } from '../../shm/constants.js';
import { DeviceRegs } from '../../shm/device_ctl.js';
import { bar0Reg } from '../../shm/phys_mem.js';
import { CqStatus, queuePairBytes } from '../../shm/ring.js';
import type { Extent } from '../../shm/page_alloc.js';
import type { Kernel } from '../../kernel/kernel.js';
import type { Mm } from '../../kernel/mm.js';
import { ACC_HOST_QID, ACC_OP_DMA_IN } from '../../devices/accelerator_abi.js';
import { CommandRunner, deviceQuery } from '../command_runner.js';
import type { Mode } from '../workload.js';
import { importerStats, processCpuMsSince, stageTimes, trafficTotals, vaCounters } from '../accounting.js';
import { bootKernel, processMm, startMachine } from '../kernel_boot.js';
import type { InvalidationStats, StageTimes, WorkloadContext } from '../workload.js';
import type { CameraChainWorkload } from './schema.js';
import { colourReferenceParams } from '../reference/colour.js';
import type { VerifyResult, VerifyTask } from './verify_task.js';
import { SOLO_GATE, type StreamGate } from './stream_gate.js';
import { invalidationSince, invalidatorMark, NO_BASELINE, stageSince } from '../counter_baseline.js';

/** Output frames the viewer process holds; a slot is reused once its frame is verified. */
const OUTPUT_SLOTS = 3;
/**
 * Unused pages after each input buffer but the last in cc0's exported
 * mapping (p2p), as a driver allocating each frame buffer apart would
 * leave. BarManager's drop-behind spares the requester's hold just behind
 * a request (the window a stream is still copying while it asks for the
 * next one); with the buffers adjacent, the camera's request for its next
 * buffer spared the whole buffer just written — done with, needed last —
 * and took the tail of the buffer it writes after, which then refaulted
 * (camera-farm: 75-page buffers are one hold each). With a gap the request
 * continues no hold, and the buffer just written goes first: 4 frames of
 * a farm pipeline refault 0 pages against 34 (docs/DESIGN.md, camera-farm
 * (8)). The kernel cannot tell the two requests apart; the camera chain's
 * large buffers (several holds each) fault the same either way.
 */
const BUFFER_GAP_PAGES = 1;
/** Queue id of cc0's peer-driven queue in p2p mode (qid 0 is the host's). */
const PEER_QID = 1;

export interface ChainResult {
  readonly frames: number;
  readonly verified: number;
  readonly frameBytes: number;
  readonly payloadBytes: number;
  readonly wallMs: number;
  /** CPU of every thread of the process during the stream (process.cpuUsage). */
  readonly cpuMs: number;
  readonly ramBytes: number;
  readonly p2pBytes: number;
  /** Commands the kernel submitted: its interventions in the data path. */
  readonly hostCommands: number;
  readonly mismatches: readonly VerifyResult[];
  readonly devices: readonly StageTimes[];
  readonly invalidations: InvalidationStats;
  /** Page requests (faults) of the importers (the camera; cc0 too with a final device), and pages refaulted after an invalidation. */
  readonly faults: number;
  readonly refaults: number;
  /** BAR slots of cc0 recycled under pressure. */
  readonly barRecycled: number;
  /** Of the importers' page requests (`faults`), those made before the stream (prefault). */
  readonly prefaults: number;
}

/** Where frame buffers are for the camera (`dst`) and for cc0 (`local` offset or RAM bus address). */
interface InputBuffer {
  readonly dst: number;
  readonly src: number;
}

/** How a frame travels: the part that differs between the modes. */
interface Path {
  readonly inputs: readonly InputBuffer[];
  /** Submits the frame's first command (output to slot `slot`; `next`: the buffer of the frame after, if any); returns the commands submitted. */
  capture(frame: number, buf: number, slot: number, next: number | null): number;
  /** Reaps completions: frames handed to cc0 (bounce: to be submitted) and frames done. */
  reap(onDone: (frame: number) => Promise<void>): Promise<number>;
  outstanding(): { dev: Device; outstanding: number }[];
  /** Tears the path down; returns how many of cc0's BAR slots were recycled. */
  finish(): Promise<{ barRecycled: number }>;
}

interface Chain {
  readonly machine: Machine;
  readonly w: CameraChainWorkload;
  readonly seed: number;
  readonly cam: Device;
  readonly cc: Device;
  readonly frameBytes: number;
  readonly framePages: number;
  readonly extents: Extent[];
  readonly kernel: Kernel;
  /** The viewer process: where the devices' VMAs live. */
  readonly mm: Mm;
  readonly store: FinalStore;
}

/**
 * Where corrected frames land, slot by slot: the viewer's RAM (default), or
 * the memory of a third device (`final:`, the [B] variant) — written by
 * cc0 straight through that device's BAR in p2p mode, or staged in RAM and
 * pulled in by the device (ACC_OP_DMA_IN) in bounce mode.
 */
interface FinalStore {
  /** PROCESS_LOCAL flags for cc0 (CC_F_DST_VA when it writes by VA). */
  readonly ccFlags: number;
  /** The address cc0 writes slot `s` to. */
  ccDst(s: number): number;
  /** Moves slot `s` to its final place (bounce with a final device); counts as kernel commands. */
  land(s: number): Promise<number>;
  /** Where the checker reads slot `s`. */
  view(s: number): { mem: SharedArrayBuffer; offset: number };
  close(): Promise<void>;
}

async function finalStore(machine: Machine, w: CameraChainWorkload, mode: Mode, kernel: Kernel, mm: Mm, frameBytes: number, extents: Extent[]): Promise<FinalStore> {
  const framePages = Math.ceil(frameBytes / PAGE_SIZE);
  const ramSlots = Array.from({ length: OUTPUT_SLOTS }, () => {
    const e = machine.ram.allocContig(framePages);
    extents.push(e);
    return e.start * PAGE_SIZE;
  });
  const toRam = ramSlots.map((bus) => kernel.dmaMap(w.corrector, bus, frameBytes, true));
  const ramView = (s: number) => ({ mem: machine.shm.desc.ram, offset: ramSlots[s] });
  if (!w.final) return { ccFlags: 0, ccDst: (s) => toRam[s], land: async () => 0, view: ramView, close: async () => undefined };
  const fin = machine.device(w.final);
  const finMem = fin.shm.mem!.buffer as SharedArrayBuffer;
  if (mode === 'p2p') {
    // The final device's driver exports the output slots to cc0 only; cc0, bound to the process, writes them by VA.
    const ex = new BarExporter(kernel, w.final, { importers: [w.corrector], readOnly: false, requireIommu: false, cpuMappable: false, premap: true });
    const out = await ex.mmap(mm, framePages * OUTPUT_SLOTS);
    const binding = await ImporterBinding.bind(kernel, w.corrector, mm);
    await prefault(binding, out.va, out.premapped);
    return {
      ccFlags: CC_F_DST_VA,
      ccDst: (s) => out.va + s * framePages * PAGE_SIZE,
      land: async () => 0,
      view: (s) => ({ mem: finMem, offset: ex.pageOf(out.vma, s * framePages) * PAGE_SIZE }),
      close: () => binding.close(),
    };
  }
  // Bounce: cc0 writes RAM, the final device pulls each frame in.
  const local = Array.from({ length: OUTPUT_SLOTS }, () => fin.mem!.allocContig(framePages).start * PAGE_SIZE);
  const pull = ramSlots.map((bus) => kernel.dmaMap(w.final!, bus, frameBytes, false));
  const q = await HostQueue.create(machine, fin, ACC_HOST_QID, 4);
  const runner = new CommandRunner(machine, kernel);
  return {
    ccFlags: 0,
    ccDst: (s) => toRam[s],
    async land(s) {
      await runner.run(q, { opcode: ACC_OP_DMA_IN, src: pull[s], dst: local[s], len: frameBytes, args: [] });
      return 1;
    },
    view: (s) => ({ mem: finMem, offset: local[s] }),
    close: async () => undefined,
  };
}

async function bouncePath(k: Chain): Promise<Path> {
  const { machine, w, cam, cc, frameBytes, framePages, kernel } = k;
  const camQ = await HostQueue.create(machine, cam, 0, w.queueDepth);
  const ccQ = await HostQueue.create(machine, cc, 0, w.queueDepth);
  // Each device gets the buffers as its DMA addresses (IOVAs behind an IOMMU).
  const inputs = Array.from({ length: w.buffers }, () => {
    const e = machine.ram.allocContig(framePages);
    k.extents.push(e);
    const bus = e.start * PAGE_SIZE;
    return { dst: kernel.dmaMap(w.camera, bus, frameBytes, true), src: kernel.dmaMap(w.corrector, bus, frameBytes, false) };
  });
  return {
    inputs,
    capture(frame, buf, slot) {
      camQ.submit({ opcode: CAMERA_OP_CAPTURE, src: 0, dst: inputs[buf].dst, len: frameBytes, args: captureArgs(frame, k.seed, w.width) }, { frame, buf, slotBus: k.store.ccDst(slot) });
      return 1;
    },
    async reap(onDone) {
      let commands = 0;
      for (const { c, tag } of camQ.reap()) {
        if (c.status !== CqStatus.Success) throw await completionError(cam, c, kernel);
        const t = tag as { frame: number; buf: number; slotBus: number };
        ccQ.submit({ opcode: CC_OP_PROCESS, src: inputs[t.buf].src, dst: t.slotBus, len: frameBytes, args: processArgs(t.frame) }, t.frame);
        commands++;
      }
      for (const { c, tag } of ccQ.reap()) {
        if (c.status !== CqStatus.Success) throw await completionError(cc, c, kernel);
        await onDone(tag as number);
      }
      return commands;
    },
    outstanding: () => [
      { dev: cam, outstanding: camQ.outstanding },
      { dev: cc, outstanding: ccQ.outstanding },
    ],
    finish: async () => ({ barRecycled: 0 }),
  };
}

async function p2pPath(k: Chain): Promise<Path> {
  const { machine, w, cam, cc, frameBytes, framePages, kernel, mm } = k;
  const camQ = await HostQueue.create(machine, cam, 0, w.queueDepth);
  // cc0's driver: its memory, exported to the camera only.
  // premap: the first buffers are in BAR slots before the camera's first fault (the window holds 2 of 3).
  const exporter = new BarExporter(kernel, w.corrector, { importers: [w.camera], readOnly: false, requireIommu: false, cpuMappable: false, premap: true });
  const stride = framePages + BUFFER_GAP_PAGES;
  const bufs = await exporter.mmap(mm, stride * (w.buffers - 1) + framePages);
  const sqPages = Math.ceil(queuePairBytes(w.queueDepth).sq / PAGE_SIZE);
  const ring = await exporter.mmap(mm, sqPages);
  const ccCq = await HostCompletionQueue.create(machine, cc, PEER_QID, w.queueDepth, exporter.pageOf(ring.vma, 0) * PAGE_SIZE);
  const binding = await ImporterBinding.bind(kernel, w.camera, mm);
  const doorbell = kernel.dmaMap(w.camera, bar0Reg(cc.shm.index, DeviceRegs.sqTail + PEER_QID), 4, true);
  await deviceQuery(machine, cam, { op: 'chain', sqVa: ring.va, entries: w.queueDepth, doorbell });
  const inputs = Array.from({ length: w.buffers }, (_, b) => ({ dst: bufs.va + b * stride * PAGE_SIZE, src: exporter.pageOf(bufs.vma, b * stride) * PAGE_SIZE }));
  // The buffers premap put in the window whole, the camera translates now (buffer by buffer: the gaps stay
  // unheld), and the ring (one page: the window is full, so it takes an unheld gap page's slot, as its first
  // fault would). Not a buffer's premapped head: that buffer was then two holds (head, and the tail faulted
  // in the stream), and camera-farm (16 frames) refaulted 1990-2106 pages against 1632 with 74-77
  // invalidation batches against 56 in 3 of 5 runs, likely because drop-behind spares only the one hold
  // just behind a request (the part of the tail a recycle left), so the head of the buffer asked for could
  // be taken. Faulted in the stream, such a buffer is one hold, as before.
  for (let b = 0; b < w.buffers && b * stride + framePages <= bufs.premapped; b++) await prefault(binding, inputs[b].dst, framePages);
  await prefault(binding, ring.va, sqPages);
  let inCc = 0;
  return {
    inputs,
    capture(frame, buf, slot, next) {
      // The camera hands cc0 the result's address in the ring entry it writes.
      const args = captureArgs(frame, k.seed, w.width);
      args[CAM_ARG_INPUT] = inputs[buf].src;
      args[CAM_ARG_CC_FLAGS] = k.store.ccFlags;
      if (next !== null) args[CAM_ARG_NEXT_PAGES] = (next - buf) * stride;
      camQ.submit({ opcode: CAMERA_OP_CAPTURE_CHAINED, src: k.store.ccDst(slot), dst: inputs[buf].dst, len: frameBytes, args }, frame);
      inCc++;
      return 1;
    },
    async reap(onDone) {
      for (const { c } of camQ.reap()) if (c.status !== CqStatus.Success) throw await completionError(cam, c, kernel);
      for (const c of ccCq.reap()) {
        if (c.status !== CqStatus.Success) throw await completionError(cc, c, kernel);
        inCc--;
        await onDone(c.result);
      }
      return 0;
    },
    outstanding: () => [
      { dev: cam, outstanding: camQ.outstanding },
      { dev: cc, outstanding: inCc },
    ],
    async finish() {
      await binding.close();
      return { barRecycled: exporter.barManager.recycled };
    },
  };
}

/**
 * Has the device of `binding` translate the first `pages` pages from `va`
 * before the stream: the driver pre-populating its device's page table
 * with what the exporter already put in its BAR window (premap), as bounce
 * mode's buffers are dma_map'ed before the stream. Pages premap put in BAR
 * slots are mapped with no recycle; a page in none (p2pPath's ring, when
 * the buffers filled the window) recycles a slot, one nobody holds first
 * (src/kernel/bar_manager.ts: a gap page's, or buffer 2's premapped
 * head's), so no importer is invalidated for it while such a slot is left.
 * The translations are ordinary device-TLB entries, dropped by any
 * invalidation like faulted ones. A refusal is a DeviceError naming the
 * device, range, errno and the kernel's reason (ImporterBinding.prefault).
 */
async function prefault(binding: ImporterBinding, va: number, pages: number): Promise<void> {
  if (pages > 0) await binding.prefault(va, pages * PAGE_SIZE, true);
}

/** CAPTURE's arguments (CAPTURE_CHAINED adds the engine's input offset and flags). */
function captureArgs(frame: number, seed: number, width: number): number[] {
  const args = new Array<number>(CAM_ARGS).fill(0);
  args[CAM_ARG_FRAME] = frame;
  args[CAM_ARG_SEED] = seed;
  args[CAM_ARG_WIDTH] = width;
  return args;
}

/** PROCESS's arguments. */
function processArgs(frame: number): number[] {
  const args = [0];
  args[CC_ARG_FRAME] = frame;
  return args;
}

/**
 * The devices' stage times and the importers' invalidation batches and ack
 * waits between open() and close() (streamFrames' window): not the
 * prefaults' page requests and fault wait (setup, before it), nor what
 * reached them while waiting at the gate's lines (another pipeline's setup),
 * nor the teardown's (-iommu: an unbind's IOTLB flush).
 */
function windowCounters(kernel: Kernel, devs: readonly Device[], importers: readonly string[]) {
  let from = NO_BASELINE;
  let got: { devices: StageTimes[]; invalidations: InvalidationStats } | null = null;
  return {
    open(): void {
      from = { ...NO_BASELINE, stages: new Map(devs.map((d) => [d.spec.name, stageTimes(d)])), inv: new Map(importers.map((n) => [n, invalidatorMark(kernel, n)])) };
    },
    close(): void {
      got = { devices: devs.map((d) => stageSince(d, from)), invalidations: invalidationSince(kernel, importers, from) };
    },
    /** What close() took. */
    counted(): { devices: StageTimes[]; invalidations: InvalidationStats } {
      if (!got) throw new Error('camera chain: the timed window never closed');
      return got;
    },
  };
}

/**
 * The timed stream: captures while an input buffer, an output slot and
 * queue room are free; each completed frame is copied out of its slot
 * (the viewer keeps it; the slot is free again); ends when every frame is
 * kept. Then every kept frame is checked against the CPU reference on
 * the verify pool. With several pipelines the window opens once all are
 * set up and the checks wait until all have streamed (./stream_gate.ts).
 * `window`: called as it opens and as it closes (the counters' marks):
 * what happens while a pipeline waits at a line is not its window's.
 */
async function streamFrames(k: Chain, path: Path, pool: Piscina, params: ColourParams, gate: StreamGate, window: { open(): void; close(): void }): Promise<{ verified: number; mismatches: VerifyResult[]; hostCommands: number; wallMs: number; cpuMs: number }> {
  const { machine, w, seed, frameBytes, store } = k;
  const slots = Array.from({ length: OUTPUT_SLOTS }, () => ({ busy: false }));
  const keep = viewerRecording(w.frames, frameBytes);
  await gate.atStart();
  window.open();
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  const freeBufs = path.inputs.map((_, i) => i);
  const where = new Map<number, { buf: number; slot: number }>();
  const mismatches: VerifyResult[] = [];
  /** Frames copied out of their output slot, checked after the stream. */
  const kept: VerifyTask[] = [];
  let nextCapture = 0;
  let hostCommands = 0;

  const onDone = async (frame: number) => {
    const at = where.get(frame & 0xffff);
    if (!at) throw new DeviceError(w.corrector, 'device-error', `completed frame ${frame}, which is not in flight`);
    where.delete(frame & 0xffff);
    freeBufs.push(at.buf);
    const landed = await store.land(at.slot);
    hostCommands += landed;
    const out = store.view(at.slot);
    // The viewer keeps the frame (one copy, inside the window); the check runs after the stream.
    const offset = kept.length * frameBytes;
    new Uint8Array(keep, offset, frameBytes).set(new Uint8Array(out.mem, out.offset, frameBytes));
    kept.push({ mem: keep, pieces: [{ offset, len: frameBytes }], seed, frame, width: w.width, height: w.height, params });
    slots[at.slot].busy = false;
  };

  for (;;) {
    const seen = machine.irqSeen();
    // Not `+= await`: that reads hostCommands before onDone (inside reap) adds to it.
    const submitted = await path.reap(onDone);
    hostCommands += submitted;
    for (let s = slots.findIndex((x) => !x.busy); s >= 0 && freeBufs.length > 0 && nextCapture < w.frames && where.size < w.queueDepth - 1; s = slots.findIndex((x) => !x.busy)) {
      const buf = freeBufs.shift()!;
      slots[s].busy = true;
      where.set(nextCapture & 0xffff, { buf, slot: s });
      // The next frame's buffer: the next free one, else the one cc0 finishes first (frames complete in order).
      const next = nextCapture + 1 < w.frames ? (freeBufs[0] ?? where.values().next().value!.buf) : null;
      hostCommands += path.capture(nextCapture, buf, s, next);
      nextCapture++;
    }
    if (kept.length === w.frames) break;
    await machine.waitHostIrq(seen, path.outstanding);
  }
  const wallMs = performance.now() - t0;
  const cpuMs = processCpuMsSince(cpu0);
  // The last frame landed in cc0's output, but the camera may not have posted its own last
  // completion yet (p2p: the loop ends on cc0's): reap until no device owes one before the window's
  // counters (commands, traffic) are taken. The clock stopped when the last frame landed: the
  // wait for that completion's interrupt is not the stream's time.
  const owed = () => path.outstanding().some((o) => o.outstanding > 0);
  while (owed()) {
    const seen = machine.irqSeen();
    hostCommands += await path.reap(onDone);
    if (owed()) await machine.waitHostIrq(seen, path.outstanding);
  }
  window.close();
  // Verification, bit-exact, after the stream (every pipeline's: not in any timed window).
  await gate.atFinish();
  const results = await Promise.all(kept.map((task) => pool.run(task) as Promise<VerifyResult>));
  for (const r of results) if (r.mismatchAt >= 0) mismatches.push(r);
  const verified = results.length;
  return { verified, mismatches: mismatches.sort((a, b) => a.frame - b.frame), hostCommands, wallMs, cpuMs };
}

/**
 * The viewer's recording, one frame after another, allocated and written
 * once before the window: a fresh SharedArrayBuffer is host zero pages
 * mapped on first write (about 1.4 us a page here, 1.3 ms for a 720p
 * frame), a cost of the emulator's host, not of the modeled viewer, that
 * both modes paid on the kernel's thread inside the window.
 */
function viewerRecording(frames: number, frameBytes: number): SharedArrayBuffer {
  // Every frame is kept for the bit-exact check after the stream: one SharedArrayBuffer, so the
  // single-memory limit applies (3000 frames of 1280x720 asked 10.3 GiB and died as a RangeError).
  if (frames * frameBytes > MAX_MEMORY_BYTES) {
    throw new LimitError(`the viewer's recording of every frame for the bit-exact check (${frames} frames of ${frameBytes} bytes; fewer --frames or a smaller frame fit)`, Math.ceil((frames * frameBytes) / MiB), MAX_MEMORY_BYTES / MiB, 'MiB');
  }
  const keep = new SharedArrayBuffer(frames * frameBytes);
  new Uint8Array(keep).fill(0);
  return keep;
}

/**
 * The piscina pool that checks frames against the CPU reference (one per
 * run; instances share it). minThreads 0: its threads start with the
 * first check, after the stream; by default piscina starts one at
 * construction, and that thread's start-up (~15-30 ms of CPU loading the
 * reference code) ran inside the window.
 */
export function verifyPool(): Piscina {
  return new Piscina({ filename: compiledModule('src/workloads/camera_chain/verify_task'), minThreads: 0, maxThreads: 2, idleTimeout: 1000, execArgv: WORKER_EXEC_ARGV });
}

/**
 * One pipeline; `shared` is the verify pool of a run with several (the
 * caller destroys it), absent: a pool of its own; `gate` the start and
 * finish lines all of the run's pipelines pass (./stream_gate.ts).
 */
export async function runCameraChain(ctx: WorkloadContext, w: CameraChainWorkload, shared?: Piscina, gate: StreamGate = SOLO_GATE): Promise<ChainResult> {
  const { machine, seed } = ctx;
  const cam = machine.device(w.camera);
  const cc = machine.device(w.corrector);
  const params = colourReferenceParams(cc.spec.props);
  const frameBytes = w.width * w.height * 4;
  const framePages = Math.ceil(frameBytes / PAGE_SIZE);
  const extents: Extent[] = [];
  const pool = shared ?? verifyPool();
  try {
    await startMachine(ctx);
    const kernel = await bootKernel(ctx);
    const mm = processMm(ctx, kernel, w.output);
    const store = await finalStore(machine, w, ctx.mode, kernel, mm, frameBytes, extents);
    const k: Chain = { machine, w, seed, cam, cc, frameBytes, framePages, extents, kernel, mm, store };
    const path = ctx.mode === 'p2p' ? await p2pPath(k) : await bouncePath(k);
    const devs = [cam, cc, ...(w.final ? [machine.device(w.final)] : [])];
    const importers = w.final ? [w.camera, w.corrector] : [w.camera];
    let prefaults = 0;
    for (const d of importers) prefaults += (await vaCounters(machine, machine.device(d))).faults;
    const window = windowCounters(kernel, devs, importers);
    const { verified, mismatches, hostCommands, wallMs, cpuMs } = await streamFrames(k, path, pool, params, gate, window);
    const { devices, invalidations } = window.counted();
    const imp = await importerStats(ctx, importers);
    const fin = await path.finish();
    await store.close();
    return {
      frames: w.frames,
      verified,
      frameBytes,
      payloadBytes: frameBytes * w.frames,
      wallMs,
      cpuMs,
      ...trafficTotals(devices),
      hostCommands,
      mismatches,
      devices,
      ...imp,
      // The window's batches and ack waits (a prefault's recycle of a held slot invalidates the camera before it).
      invalidations,
      ...fin,
      prefaults,
    };
  } finally {
    if (!shared) await pool.destroy();
    for (const e of extents) machine.ram.freeExtent(e);
  }
}
