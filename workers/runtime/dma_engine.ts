/**
 * A device's DMA engine: copies between bus addresses and the device's own
 * local memory, decoding every address through the shared bus map.
 *
 * Rules it keeps (DESIGN.md sections 3 and 4):
 * - copy runs, not pages: a decoded run spans as many contiguous pages as
 *   the memory gives; one chunk gathers runs of one memory up to
 *   DMA_RUN_BYTES (scattered backing pages are decoded first, then copied
 *   one after another without a checkpoint, a run-token tick or a kill test per page; each
 *   still passes the onRun veto when there is one, and the step's runs go
 *   to the onGather safety check together), DMA_CHECK_BYTES for a
 *   bus-to-bus copy (one run, no poll inside);
 * - between two steps it serves pending invalidations (the checkpoint),
 *   and while a step decodes or copies it polls for one every
 *   DMA_POLL_BYTES: a pending invalidation ends the decode there, or cuts
 *   the step's copies there (runs decoded past the cut are dropped
 *   uncopied), so an ack waits for at most one piece;
 * - read/write time and count each call; a caller that makes one command
 *   of many runs (VaSpace) calls transfer() per run and finish() once,
 *   so per-run cost is the decode, the veto and the copy alone;
 * - a bad address aborts the transfer and is returned as a message naming
 *   the device and the address; it never throws.
 * - a write that lands in a device's register file (BAR0) is a doorbell:
 *   aligned 32-bit stores only, followed by a wake of the owner.
 */
import { barSlotBacking, BusDecoder, hex, isBusFault, scratchRun, type BusRun, type RunTarget } from '../../src/shm/bus_map.js';
import { DMA_CHECK_BYTES, DMA_POLL_BYTES, DMA_RUN_BYTES, PAGE_SIZE } from '../../src/shm/constants.js';
import { DeviceStats, ringWake } from '../../src/shm/device_ctl.js';
import { bar2Base, type DeviceShm, type MachineShm } from '../../src/shm/phys_mem.js';
import { DMA_TARGET, TraceEvent, traceSink } from '../../src/shm/trace_ring.js';
import { GatherList } from './gather_list.js';
import type { RunTokenHook } from './run_token.js';

/** Translates a device address (bus address or IOVA) before decode; identity without an IOMMU. The result may be reused by the next call: read it at once. */
export type Translate = (addr: number, len: number, write: boolean) => { addr: number; len: number } | { fault: string };

export const identity: Translate = (addr, len) => ({ addr, len });

/**
 * Returned when an invalidation killed the run in flight (the `killed()`
 * test before a chunk, or an onRun veto; workers/runtime/va_space.ts): the
 * caller refaults and redoes the run; it is not a device error.
 */
export const INVALIDATED = 'invalidated mid-transfer';

export class DmaEngine {
  private readonly local: Uint8Array;
  /** The last run moved, for the trace event of the call. */
  private last: BusRun | null = null;
  /**
   * Bytes the last transfer() or copy() completed, also when it stopped
   * early: after INVALIDATED, the caller refaults and goes on from there
   * (bytes copied before the ack were read from the old target while it was
   * still the mapping's, so they stand).
   */
  moved = 0;
  /** The transfer() in progress (never reentered: nothing in its chunk loop starts another DMA). */
  private readonly x = { addr: 0, localOff: 0, len: 0, write: false };
  /** The run transfer() decodes into (copy() keeps two runs at once, so it decodes into new objects). */
  private readonly scratch = scratchRun();
  translate: Translate = identity;
  /**
   * Called for every decoded run before any of its step's runs is copied
   * (a veto, and a safety check of one run: workers/mirror.ts compares its
   * entry with the live generation table here); a run decoded past a cut
   * is then dropped uncopied. Returns an error message to abort the
   * transfer, INVALIDATED, or null. Must never serve an invalidation: the
   * step's runs are decoded before they are copied on the promise that no
   * ack happens inside a step (transferStep).
   */
  onRun: ((run: BusRun, addr: number, write: boolean) => string | null) | null = null;
  /**
   * Called once per gather step of transfer(), with the runs it copied
   * (also when the step then fails: those bytes moved): the safety check
   * of a whole step in one call (VaSpace). The list's runs were decoded
   * in this step and no invalidation was served between their decode and
   * this call (acks happen at checkpoints, between steps), so a
   * translation that was good at the copy is still good here, and a stale
   * one is still stale (generations only move forward).
   */
  onGather: ((runs: GatherList, write: boolean) => void) | null = null;
  /** The runs of the step in progress (onGather). */
  private readonly gathered = new GatherList();
  /**
   * Asked before each chunk is decoded: true when an invalidation served at
   * the last checkpoint killed the transfer in flight (VaSpace). Checked
   * before the decode, because the kernel may already have closed the BAR
   * slot the dead translation points at: decoding it would report a bus
   * error for what is only a refault.
   */
  killed: (() => boolean) | null = null;
  /** Cooperative run tokens (workers/runtime/run_token.ts), when the machine has them. */
  runToken: RunTokenHook | null = null;
  /**
   * Set by holding(), for a command of many transfers (VaSpace.io, a NIC
   * SEND's bursts and checksums, workers/nic.ts): the token stays held
   * from one transfer to the next (no ticket per run); the command gives it
   * back with releaseToken() before anything that waits (a page request),
   * and holding() at its end. Its value is the command's length: whether a
   * transfer needs a token at all (RUN_TOKEN_FREE_BYTES) is the command's
   * size, not its runs' (runs over scattered BAR slots can each be one
   * page). 0: no command holds it.
   */
  private holdToken = 0;

  constructor(
    private readonly self: DeviceShm,
    private readonly shm: MachineShm,
    private readonly bus: BusDecoder,
    /** Serves pending invalidations between runs. */
    private readonly checkpoint: () => void,
    /** Is an invalidation pending? Polled while a step decodes its runs and between the pieces it copies. */
    private readonly pending: () => boolean = () => false,
  ) {
    this.local = self.mem ?? new Uint8Array(0);
  }

  /** Device bus address `src` -> local memory [localOff, +len). Returns an error message or null. */
  read(src: number, localOff: number, len: number): string | null {
    return this.timed(src, localOff, len, false);
  }

  /** Local memory [localOff, +len) -> device bus address `dst`. */
  write(dst: number, localOff: number, len: number): string | null {
    return this.timed(dst, localOff, len, true);
  }

  private timed(addr: number, localOff: number, len: number, write: boolean): string | null {
    const t0 = performance.now();
    this.last = null;
    const bad = this.transfer(addr, localOff, len, write);
    if (bad !== null) return bad;
    this.finish(t0, performance.now() - t0, len, addr, write);
    return null;
  }

  /** Bus-to-bus copy (for devices that move data without staging it). */
  copy(dst: number, src: number, len: number): string | null {
    const t0 = performance.now();
    const bad = this.chunks(len, (done) => {
      const n = Math.min(len - done, DMA_CHECK_BYTES);
      const s = this.resolve(src + done, n, false);
      if (typeof s === 'string') return this.fail('read from', src + done, s);
      const d = this.resolve(dst + done, s.len, true);
      if (typeof d === 'string') return this.fail('write to', dst + done, d);
      if (d.target === 'regs' || s.target === 'regs') return this.fail('copy to', dst + done, 'bus-to-bus copy cannot touch registers');
      // Both ends pass the same veto and checks as a read or a write.
      const veto = this.vetoed(this.onRun?.(s, src + done, false) ?? this.onRun?.(d, dst + done, true) ?? null, 'copy to', dst + done);
      if (veto !== null) return veto;
      d.bytes.set(s.bytes.subarray(s.offset, s.offset + d.len), d.offset);
      this.account(s.target, s.owner, false, d.len);
      this.account(d.target, d.owner, true, d.len);
      return d.len;
    });
    if (bad !== null) return bad;
    this.countOp(performance.now() - t0);
    traceSink.w?.emit(TraceEvent.Dma, performance.timeOrigin + t0, performance.now() - t0, len, DMA_TARGET.peer, dst, 1, -1);
    return null;
  }

  /**
   * Device address [addr, +len) <-> local memory [localOff, +len), untimed
   * (read/write time it; VaSpace times a whole command and calls finish()).
   * A decoded run is copied in pieces of DMA_POLL_BYTES; when an
   * invalidation is pending after a piece, the rest of the run is left for
   * the next turn of the loop, after the checkpoint served it (and the
   * onRun veto had its say again). A write that lands in registers is a
   * doorbell. Returns an error message or null.
   */
  transfer(addr: number, localOff: number, len: number, write: boolean): string | null {
    this.checkLocal(localOff, len);
    const x = this.x;
    x.addr = addr;
    x.localOff = localOff;
    x.len = len;
    x.write = write;
    return this.chunks(len, this.transferStep);
  }

  /**
   * The step of transfer()'s chunk loop, over `x` (made once: no closure per
   * call): a gather of up to DMA_RUN_BYTES, in two passes. First the device
   * address range is decoded into runs of physically contiguous memory (one
   * page each when the backing is scattered), each passing the onRun veto,
   * if any, without going back to the chunk loop: no run-token tick, kill
   * test nor checkpoint per page. Then the runs are copied one after the
   * other, and go to the onGather safety check in one call at the end of
   * the step (also when it fails: those bytes moved). Decoding before
   * copying keeps the slot-table loads (Atomics.load) out of the copy loop,
   * which is then a plain loop over the list (copyPieces): in a bare loop
   * an atomic load after each 4 KiB page copy added 80-100 ns a page
   * (Node 20, x64), though in the engine this alone moved nothing
   * measurable; the copy loop compiled per direction did. No
   * invalidation is acked inside a step (acks happen at checkpoints, after
   * it), so a run decoded before the copies of the runs ahead of it is as
   * good at its own copy as a run decoded just before it. The invalidation
   * word is still polled after every DMA_POLL_BYTES decoded (an
   * invalidation posted as a step of 64 one-page runs began its decode
   * reached the checkpoint 7.9 us later (p50), 6.5 us with this poll:
   * in-process, 128 MiB of shuffled pages, load 16), and after
   * every DMA_POLL_BYTES copied, across runs as inside one, so an ack
   * waits for at most one piece: a pending invalidation ends the decode
   * there, or ends the copies there (the runs decoded past it are dropped
   * uncopied), and the checkpoint serves it. A bad address or a veto after
   * the first run fails the transfer there, as on the first, once the runs
   * before it are copied (also when a pending invalidation cut the copies
   * short of it: it was decoded before any ack, so it is a fault of the
   * translation the device held, and decoding it again would count an
   * IOMMU fault twice); a register run, a run in another
   * memory or INVALIDATED ends the step, and the next step meets it first.
   */
  private transferStep(done: number): number | string {
    const { addr, localOff, len, write } = this.x;
    const want = Math.min(len - done, DMA_RUN_BYTES);
    const first = this.resolve(addr + done, want, write, true);
    if (typeof first === 'string') return this.fail(write ? 'write to' : 'read from', addr + done, first);
    const veto = this.onRun === null ? null : this.vetoed(this.onRun(first, addr + done, write), write ? 'write to' : 'read from', addr + done);
    if (veto !== null) return veto;
    this.last = first;
    if (first.target === 'regs') return this.regsRun(first, localOff + done, write, addr + done);
    const g = this.gathered;
    g.reset();
    g.push(first, addr + done, first.len);
    const stop = this.gather(g, addr + done, want, write);
    const got = this.copyGathered(g, localOff + done, write);
    this.account(g.target, g.owner, write, got);
    this.onGather?.(g, write);
    return stop === null ? got : this.failGathered(done + got, write, stop.at, stop.why);
  }

  /** Where gather() met a bad address or a veto: the transfer fails there once the runs before it are copied. */
  private readonly stop = { at: 0, why: '' };

  /**
   * Decodes the runs after g's first (device address `at0`) up to `want`
   * bytes into g, each with its whole length (copyGathered trims the last
   * one copied); stops at the end, a full list, a register run, a run in
   * another memory, INVALIDATED, an invalidation found pending after each
   * DMA_POLL_BYTES decoded (decodePending), or a bad address or a veto
   * (returned).
   */
  private gather(g: GatherList, at0: number, want: number, write: boolean): { at: number; why: string } | null {
    let span = g.len[0];
    this.pollAt = DMA_POLL_BYTES;
    this.decodeCut = false;
    // Untranslated BAR2 pages go on in the same window: the next slot is read in place (BusDecoder.decodeBarNext).
    const bar = g.target === 'devmem' && this.translate === identity;
    // With no veto to ask per run, the slots are read in one tight loop (gatherBar); it stops where it cannot go on, and the loop below says why.
    if (bar && this.onRun === null) span = this.gatherBar(g, at0, span, want);
    while (span < want && !g.full && !this.decodeCut) {
      if (span >= this.pollAt && this.decodePending(span)) break;
      const at = at0 + span;
      let run: BusRun | string = this.scratch;
      if (!bar || !this.bus.decodeBarNext(this.scratch, at, want - span)) {
        run = this.resolve(at, want - span, write, true);
        // A bad address fails after this step's runs are copied and checked, once (an IOMMU counts each fault it reports); bytes before it stand.
        if (typeof run === 'string') return this.stopAt(at, run);
        if (run.target === 'regs' || !g.fits(run)) break; // the next step handles the registers, or the other memory
      }
      if (this.onRun !== null) {
        const v = this.onRun(run, at, write);
        if (v === INVALIDATED) break; // the next step's kill test returns it, with the bytes before it moved
        if (v !== null) return this.stopAt(at, v);
      }
      g.push(run, at, run.len);
      span += run.len;
    }
    return null;
  }

  /**
   * gather()'s fast path over an untranslated BAR2 window when there is no
   * onRun veto: the slots after g's last run are read in one loop (one
   * barSlotBacking a page, no region lookup), a slot that maps the
   * page after the last run's end extending that run, as decodeBarNext()
   * and slotRunLen() would. Returns the bytes gathered from `at0`; stops
   * (leaving the rest to gather()'s general loop, which reports a fault or
   * ends the step) at `want`, a full list, a slot that maps no page, the
   * window's end, or an address that is not page aligned.
   */
  private gatherBar(g: GatherList, at0: number, span0: number, want: number): number {
    const dev = this.shm.devices[g.owner];
    const slots = dev.barSlots!;
    const off = at0 + span0 - bar2Base(dev.index);
    if (off < 0 || (off & (PAGE_SIZE - 1)) !== 0) return span0;
    let span = span0;
    let last = g.n - 1;
    let end = g.offset[last] + g.len[last];
    for (let slot = off / PAGE_SIZE; span < want && slot < slots.length; slot++) {
      if (span >= this.pollAt && this.decodePending(span)) break;
      const at = barSlotBacking(slots, slot);
      if (at < 0) break;
      const n = Math.min(PAGE_SIZE, want - span);
      if (at === end) g.len[last] += n;
      else {
        if (g.full) break;
        g.pushAt(at0 + span, at, n);
        last++;
      }
      end = at + n;
      span += n;
    }
    return span;
  }

  /** Decoded bytes of the step at which gather() next asks whether an invalidation is pending (decodePending). */
  private pollAt = 0;
  /** gather() found an invalidation pending: the step ends with the runs decoded so far. */
  private decodeCut = false;

  /**
   * gather()'s poll, once per DMA_POLL_BYTES decoded after the first: is an
   * invalidation pending? Then the step stops decoding and copies what it
   * has (about one piece), so the checkpoint after it serves the
   * invalidation one piece after it was posted, as a poll between two
   * pieces would, and not after the decode of a whole step of one-page
   * runs (up to GATHER_RUNS slot loads, and the onRun veto of each). Reads
   * only: nothing is served inside a step.
   */
  private decodePending(span: number): boolean {
    this.pollAt = span + DMA_POLL_BYTES;
    this.decodeCut = this.pending();
    return this.decodeCut;
  }

  private stopAt(at: number, why: string): { at: number; why: string } {
    this.stop.at = at;
    this.stop.why = why;
    return this.stop;
  }

  /**
   * Copies g's runs in order to or from local memory from `local` on, in
   * pieces that end every DMA_POLL_BYTES of the step, across runs as inside
   * one; after each such piece, polls for a pending invalidation, which
   * cuts the copy there, and g is trimmed to the runs and bytes that moved
   * (what onGather checks). Returns the bytes copied (transferStep counts
   * them to the step's memory once: all g's runs lie in one).
   */
  private copyGathered(g: GatherList, local: number, write: boolean): number {
    const run = this.scratch; // what the trace names (last) is the memory copied
    run.target = g.target;
    run.owner = g.owner;
    run.bytes = g.bytes;
    run.gen = g.gen;
    // Two call sites with `write` a constant, so the copy loop is compiled once per direction: with the
    // direction a variable inside it, a scattered read cost ~80 ns a page more (single-thread harness, Node 20).
    const got = write ? this.copyPieces(g, local, true) : this.copyPieces(g, local, false);
    // g holds at least the step's first run (transferStep), trimmed to what moved.
    run.offset = g.offset[g.n - 1];
    run.len = g.len[g.n - 1];
    return got;
  }

  /**
   * copyGathered's loop: one loop over locals, no call per run (a run is one
   * page over scattered backing); a cut trims g. A run that ends before the
   * next poll is copied whole (the common case of one-page runs); a run
   * that reaches it is copied piece by piece.
   */
  private copyPieces(g: GatherList, local: number, write: boolean): number {
    const mem = g.bytes;
    const mine = this.local;
    const n = g.n;
    let l = local;
    let budget = DMA_POLL_BYTES; // bytes before the next poll
    for (let i = 0; i < n; i++) {
      const at = g.offset[i];
      const len = g.len[i];
      if (len < budget) {
        if (write) mem.set(mine.subarray(l, l + len), at);
        else mine.set(mem.subarray(at, at + len), l);
        l += len;
        budget -= len;
        continue;
      }
      for (let off = 0; off < len; ) {
        const k = Math.min(budget, len - off);
        if (write) mem.set(mine.subarray(l, l + k), at + off);
        else mine.set(mem.subarray(at + off, at + off + k), l);
        off += k;
        l += k;
        budget -= k;
        if (budget > 0) break; // the run ended before the next poll
        budget = DMA_POLL_BYTES;
        // No poll after the step's last piece: the checkpoint right after it serves what the poll would find.
        if ((off < len || i + 1 < n) && this.pending()) {
          g.len[i] = off;
          g.n = i + 1;
          return l - local;
        }
      }
    }
    return l - local;
  }

  /** A gathered run failed at `at`: the bytes before it stand (`moved`), the transfer ends there. */
  private failGathered(moved: number, write: boolean, at: number, why: string): string {
    this.moved = moved;
    return this.fail(write ? 'write to' : 'read from', at, why);
  }

  /** A run in the register file: a write is a doorbell, a read copies the registers. */
  private regsRun(run: BusRun, local: number, write: boolean, addr: number): number | string {
    const bad = write ? this.doorbell(run, local) : null;
    if (bad !== null) return this.fail('write to', addr, bad);
    if (!write) this.local.set(run.bytes.subarray(run.offset, run.offset + run.len), local);
    this.account(run.target, run.owner, write, run.len);
    return run.len;
  }

  /** Gives back a run token held across transfers (holdToken). */
  releaseToken(): void {
    this.runToken?.done();
  }

  /**
   * Runs `command` (`len` bytes, many transfers) holding one run token
   * across its transfers (holdToken); nested inside a command that holds
   * it already, keeps that hold. The outermost gives the token back when
   * it ends, error or throw included.
   */
  holding<T>(len: number, command: () => T): T {
    const outer = this.holdToken;
    this.holdToken = Math.max(outer, len);
    try {
      return command();
    } finally {
      this.holdToken = outer;
      if (outer === 0) this.releaseToken();
    }
  }

  /**
   * Counts one completed read/write of `len` bytes that took `ms` of
   * copying (device stats), and traces it (a slice of `spanMs` from `t0`)
   * with the target of its last run.
   */
  finish(t0: number, ms: number, len: number, addr: number, write: boolean, spanMs = ms): void {
    this.countOp(ms);
    const tw = traceSink.w;
    const end = this.last;
    // The slice spans the whole call (spanMs): page requests made inside it nest in it.
    if (tw && end) tw.emit(TraceEvent.Dma, performance.timeOrigin + t0, spanMs, len, this.targetOf(end), addr, write ? 1 : 0, end.owner);
  }

  private countOp(ms: number): void {
    this.self.stats[DeviceStats.dmaOps]++;
    this.self.stats[DeviceStats.dmaNs] += ms * 1e6;
  }

  /**
   * The loop copy() and transfer() share: before each chunk, stop if an
   * invalidation killed the transfer; `step(done)` copies the chunk that
   * starts `done` bytes in and returns the bytes it moved, or an error
   * message that ends the transfer; pending invalidations are served after
   * every chunk. Returns the error message or null; `moved` says how many
   * bytes were copied before it stopped.
   */
  private chunks(len: number, step: (this: DmaEngine, done: number) => number | string): string | null {
    try {
      return this.chunkLoop(len, step);
    } finally {
      if (this.holdToken === 0) this.runToken?.done(); // held only inside a transfer, or a command that holds it (workers/runtime/run_token.ts)
    }
  }

  private chunkLoop(len: number, step: (this: DmaEngine, done: number) => number | string): string | null {
    let done = 0;
    this.moved = 0;
    while (done < len) {
      const noToken = this.runToken?.chunk(Math.max(len, this.holdToken)) ?? null; // waits for a run token, acking invalidations meanwhile
      if (noToken !== null) return noToken;
      if (this.killed?.()) return INVALIDATED;
      const n = step.call(this, done); // a method, not a closure of this engine: optimized code inlines its call target (thread_machine.ts)
      if (typeof n === 'string') return n;
      done += n;
      this.moved = done;
      this.checkpoint();
    }
    return null;
  }

  /** The onRun veto's verdict: INVALIDATED passes through (a refault, not a device error); any other message fails the transfer at `addr`. */
  private vetoed(why: string | null, verb: string, addr: number): string | null {
    if (why === null || why === INVALIDATED) return why;
    return this.fail(verb, addr, why);
  }

  /** DMA_TARGET of a run, for the trace. */
  private targetOf(run: BusRun): number {
    if (run.target === 'ram') return DMA_TARGET.ram;
    return run.owner === this.self.index ? DMA_TARGET.local : DMA_TARGET.peer;
  }

  private resolve(addr: number, len: number, write: boolean, into = false): BusRun | string {
    let a = addr;
    let n = len;
    if (this.translate !== identity) {
      const t = this.translate(addr, len, write);
      if ('fault' in t) return t.fault;
      a = t.addr;
      n = t.len;
    }
    const run = this.bus.decodeTo(a, n, into ? this.scratch : null);
    return isBusFault(run) ? run.fault : run;
  }

  /** A doorbell write: an error message or null. */
  private doorbell(run: BusRun, localOff: number): string | null {
    if (run.offset % 4 !== 0 || run.len !== 4) return `register write of ${run.len} bytes at offset ${run.offset} of ${this.shm.devices[run.owner].name} BAR0 (doorbells take aligned 32-bit writes)`;
    const owner = this.shm.devices[run.owner];
    const value = new DataView(this.local.buffer, this.local.byteOffset).getInt32(localOff, true);
    Atomics.store(owner.regs, run.offset / 4, value);
    ringWake(owner.ctl);
    traceSink.w?.instant(TraceEvent.Doorbell, run.owner, run.offset / 4, value);
    return null;
  }

  private account(target: RunTarget, owner: number, write: boolean, bytes: number): void {
    const s = this.self.stats;
    if (target === 'ram') s[write ? DeviceStats.bytesToRam : DeviceStats.bytesFromRam] += bytes;
    else if (owner === this.self.index) s[DeviceStats.bytesLocal] += bytes;
    else s[write ? DeviceStats.bytesToPeer : DeviceStats.bytesFromPeer] += bytes;
  }

  private fail(verb: string, addr: number, why: string): string {
    this.self.stats[DeviceStats.dmaErrors]++;
    return `${this.self.name}: DMA ${verb} ${hex(addr)} aborted: ${why}`;
  }

  private checkLocal(off: number, len: number): void {
    if (off < 0 || off + len > this.local.length) {
      throw new DmaFault(`${this.self.name}: local buffer [${off}, +${len}) outside its ${this.local.length}-byte memory`);
    }
  }
}

/** A programming error inside a device model (not a bad address from the outside). */
export class DmaFault extends Error {
  override name = 'DmaFault';
}
