/**
 * The runs one DMA gather step copied (workers/runtime/dma_engine.ts
 * transferStep), handed to the safety checker in one call per step instead
 * of one per run: with scattered backing a step is up to 64 one-page runs,
 * and a call per page cost more than its decode.
 *
 * Every run of a list lies in one memory (the step ends where the next run
 * would lie in another), so target, owner and generation table are the
 * list's; each run keeps the device address it was reached through (what
 * the TLB entry names), its offset in that memory as decoded (the slot's
 * page at decode time) and its length (decoded, then trimmed to the bytes
 * copied: a step's runs are all decoded before the first is copied). Lifetime: one per DmaEngine,
 * reset at the start of each step; read it only inside the onGather call.
 */
import type { BusRun, RunTarget } from '../../src/shm/bus_map.js';
import { DMA_RUN_BYTES, PAGE_SIZE } from '../../src/shm/constants.js';

/** Runs in one step: DMA_RUN_BYTES of one-page runs, plus a partial page at either end. */
export const GATHER_RUNS = DMA_RUN_BYTES / PAGE_SIZE + 2;

export class GatherList {
  n = 0;
  target: RunTarget = 'ram';
  owner = -1;
  bytes: Uint8Array = new Uint8Array(0);
  gen: Int32Array | null = null;
  /** Device address (bus address or IOVA) each run was reached through. */
  readonly addr = new Float64Array(GATHER_RUNS);
  /** Byte offset of each run in `bytes`, as decoded. */
  readonly offset = new Float64Array(GATHER_RUNS);
  /** Bytes of each run: as decoded while the step gathers, then as copied (DmaEngine trims the list before onGather). */
  readonly len = new Int32Array(GATHER_RUNS);

  reset(): void {
    this.n = 0;
  }

  get full(): boolean {
    return this.n === GATHER_RUNS;
  }

  /** May `run` join the list (the same memory as its runs so far)? */
  fits(run: BusRun): boolean {
    return this.n === 0 || (run.bytes === this.bytes && run.gen === this.gen && run.owner === this.owner && run.target === this.target);
  }

  /** Records `len` bytes of `run` copied, reached through device address `addr` (call fits() first). */
  push(run: BusRun, addr: number, len: number): void {
    const i = this.n++;
    if (i === 0) {
      this.target = run.target;
      this.owner = run.owner;
      this.bytes = run.bytes;
      this.gen = run.gen;
    }
    this.addr[i] = addr;
    this.offset[i] = run.offset;
    this.len[i] = len;
  }

  /** Records a run at `offset` of the list's memory, after its first (push() set the memory); call only when not full. */
  pushAt(addr: number, offset: number, len: number): void {
    const i = this.n++;
    this.addr[i] = addr;
    this.offset[i] = offset;
    this.len[i] = len;
  }
}
