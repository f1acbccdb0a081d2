/**
 * What a pooled device worker (src/devices/worker_pool.ts) keeps across
 * machines so that V8's optimized device code survives its reset: not a
 * kernel mirror, an emulator concern (issue 11, session 11).
 *
 * TurboFan code holds the objects it was specialised on weakly: the maps
 * (hidden classes) of the receivers it checks, and the call targets and
 * receivers it inlined. When the last object of a map, or an inlined
 * closure, is collected, V8 deoptimizes every function that embedded it
 * (`--trace-deopt`: "marking dependent code ... reason: weak objects"),
 * and the next run compiles them again inside its timed window. Two
 * things die at a pooled reset:
 *   - per-machine closures used as call targets (the DMA engine's
 *     invalidation checkpoint, onGather and killed, the loop's work
 *     function): liveCalls and attachVa below replace them with functions
 *     of this module that reach the current machine through one
 *     long-lived holder re-pointed at configure (and bind-mm);
 *   - the maps of per-machine class instances (DeviceTlb, DmaEngine,
 *     VaSpace, ...): a map lives while an object of it does, and V8's
 *     --retain-maps-for-n-gc does not keep them through the forced
 *     collection (measured). RetiredMachine keeps the last machine's
 *     objects until the next machine has built its own (same classes, so
 *     the same maps), and only then drops them and collects.
 *
 * Invariants: the holder points at the machine being served, or at
 * nothing between reset and configure; a retired machine is never used
 * (its loop has ended, it is only kept reachable); at most one retired
 * machine per thread: it is collected when the next machine binds its
 * process (or starts, when the retired one had none bound), else at the
 * next machine's reset. [Required: an idle pooled worker keeps at most one
 * earlier machine's shared memory resident —
 * test/devices/worker_pool.test.ts measures RSS.]
 */
import type { SqCommand } from '../../src/shm/ring.js';
import type { DmaEngine } from './dma_engine.js';
import type { CommandResult, DeviceQueues } from './device_queues.js';
import type { GatherList } from './gather_list.js';
import type { InvalidationPort } from './invalidation.js';

/** What the loop calls on the device model (./device_model.ts DeviceModel; not imported: device_model -> va_space -> here would be a cycle). */
interface ModelCalls {
  execute(cmd: SqCommand, qid: number): CommandResult;
  poll?(): boolean;
}

/** What DmaEngine calls back into the bound process's VaSpace (./va_space.ts). */
interface VaHooks {
  onGather(runs: GatherList, write: boolean): void;
  readonly flightKilled: boolean;
}

/** The machine this thread serves now; its fields are re-pointed at configure and cleared at reset. */
const live: { inv: InvalidationPort | null; queues: DeviceQueues | null; model: ModelCalls | null; va: VaHooks | null } = { inv: null, queues: null, model: null, va: null };

/** Serves live.inv's pending invalidations between DMA pieces (DmaEngine checkpoint): an ack to a sleeping main yields the core. */
function invCheck(): boolean {
  return live.inv!.check(true);
}

/** The same at the top of a DeviceLoop pass: no yield, a device with nothing to do sleeps next anyway. */
function invCheckLoop(): boolean {
  return live.inv!.check(false);
}

/** Is an invalidation of live.inv pending? (DmaEngine's poll). */
function invPending(): boolean {
  return live.inv!.pending();
}

function execute(cmd: SqCommand, qid: number): CommandResult {
  return live.model!.execute(cmd, qid);
}

/** One round of device work: the queues, then the model's own (DeviceLoop's work). */
function work(): boolean {
  return live.queues!.poll(execute) || (live.model!.poll?.() ?? false);
}

function vaGather(runs: GatherList, write: boolean): void {
  live.va!.onGather(runs, write);
}

function vaKilled(): boolean {
  return live.va!.flightKilled;
}

/** A process was bound (VaSpace): the DMA engine's safety and kill checks reach it through the holder. */
export function attachVa(dma: DmaEngine, va: VaHooks): void {
  live.va = va;
  dma.onGather = vaGather;
  dma.killed = vaKilled;
}

export const liveCalls = { invCheck, invCheckLoop, invPending, work } as const;

/** Points the long-lived calls at a newly configured machine. */
export function serveMachine(inv: InvalidationPort, queues: DeviceQueues, model: ModelCalls): void {
  live.inv = inv;
  live.queues = queues;
  live.model = model;
}

/** Forgets the machine (reset): the calls reach nothing until the next serveMachine. */
export function forgetMachine(): void {
  live.inv = null;
  live.queues = null;
  live.model = null;
  live.va = null;
}

/**
 * The last machine's objects, kept only so their maps outlive the reset
 * (see the top comment). `bound`: that machine had a process bound (its
 * VaSpace/DeviceTlb maps are only rebuilt by the next bind).
 */
export class RetiredMachine {
  private kept: { graph: object; bound: boolean } | null = null;

  constructor(private readonly collect: () => void) {}

  /** Keeps `graph` (a reset machine); an older one still kept is dropped and collected now. */
  retire(graph: object, bound: boolean): void {
    const older = this.kept !== null;
    this.kept = { graph, bound };
    if (older) this.collect();
  }

  /** The next machine started: drop the retired one unless its bound objects wait for the next bind. */
  started(): void {
    if (this.kept && !this.kept.bound) this.release();
  }

  /** The next machine bound its process: everything the retired one had exists again. */
  bound(): void {
    if (this.kept) this.release();
  }

  /** Drops the retired machine and collects (its shared memory leaves this isolate). */
  release(): void {
    this.kept = null;
    this.collect();
  }
}
