/**
 * The start and finish lines of a run with several camera pipelines
 * (`pipelines: N`, camera-farm): every pipeline's timed window opens once
 * all N are set up, and no pipeline checks its frames before all N have
 * streamed.
 *
 * Why: the pipelines share the machine's cores and the run's figure is
 * the longest pipeline's window. Without the lines, a pipeline that set
 * up first streamed while the others still set up (p2p: exporter mmap,
 * BAR pre-map, binding; bounce: DMA maps), and one that finished first
 * checked its frames on the verify pool while the others still streamed:
 * setup and verification, which the window leaves out, landed in the
 * other pipelines' windows (the p2p ones carried more of it).
 *
 * Invariants: each pipeline passes each line once, in order (atStart,
 * then atFinish). When a pipeline fails the run already fails
 * (runInstances' Promise.all rejects at once); open() then lets the
 * parked pipelines through so they finish and run their `finally`
 * cleanup rather than stay parked for the life of the process. A single
 * pipeline (N = 1) never waits. The lines have no timeout of their own
 * (src/workloads/barrier.ts says why none is needed).
 */
import { Barrier } from '../barrier.js';

export class StreamGate {
  private readonly start: Barrier;
  private readonly finish: Barrier;

  constructor(pipelines: number) {
    this.start = new Barrier(pipelines);
    this.finish = new Barrier(pipelines);
  }

  /** Set up: resolves once every pipeline is (its window opens then). */
  atStart(): Promise<void> {
    return this.start.pass();
  }

  /** Streamed: resolves once every pipeline has (its frames are checked then). */
  atFinish(): Promise<void> {
    return this.finish.pass();
  }

  /** A pipeline failed: nobody waits for it at either line. */
  open(): void {
    this.start.open();
    this.finish.open();
  }
}

/** The gate of a run with one pipeline: no line waits. */
export const SOLO_GATE = new StreamGate(1);
