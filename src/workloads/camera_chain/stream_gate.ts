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
 * then atFinish); open() lets every waiter through (a pipeline failed:
 * the run fails, the others must not wait for it). A single pipeline
 * (N = 1) never waits.
 */

/** One line N pipelines wait at; open() lets everyone through. */
class Line {
  private arrived = 0;
  private release: () => void = () => undefined;
  private readonly all = new Promise<void>((r) => (this.release = r));

  constructor(private readonly n: number) {
    if (n <= 1) this.release();
  }

  pass(): Promise<void> {
    if (++this.arrived >= this.n) this.release();
    return this.all;
  }

  open(): void {
    this.release();
  }
}

export class StreamGate {
  private readonly start: Line;
  private readonly finish: Line;

  constructor(pipelines: number) {
    this.start = new Line(pipelines);
    this.finish = new Line(pipelines);
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
