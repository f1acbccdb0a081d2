/**
 * The camera driver's job bookkeeping in p2p mode: which frame buffers the
 * camera's queued captures write, and the translations the driver
 * installs for each (src/drivers/submit_map.ts), as a GPU driver without
 * ATS/PRI maps a job's buffers and updates the device page table when it
 * submits the job, and the job waits on that update's fence.
 *
 * Every capture gets a DriverMap post sequence (CAM_ARG_MAP_SEQ) when it
 * is submitted; the driver maps its buffer and posts the translations once
 * it is at most one capture behind the camera's current one (the camera
 * renders its frame meanwhile), one map at a time, in submission order (the
 * mailbox holds one post; the camera frees it when it starts the capture
 * before). The camera waits for its capture's post (workers/runtime/
 * map_fence.ts): the BAR recycling of the map and the revoke of the slots
 * it takes ran while it rendered, and it makes no page request.
 *
 * The buffers of the capture in progress and of the one mapped next are
 * kept (BarExporter.keepFor): a map's recycling takes the slots of a
 * buffer the camera is done with (the one colour correction works on, from
 * its local memory), not those of the frame being written.
 *
 * With the IOMMU on the binding gives no target (its entries would need
 * IOVAs): captures carry no sequence and the camera faults as before.
 *
 * Threading: main thread only.
 */
import { PAGE_SIZE } from '../../shm/constants.js';
import { DriverMap } from '../../shm/driver_map_layout.js';
import type { BarExporter } from '../../drivers/bar_exporter.js';
import type { ImporterBinding } from '../../drivers/importer_binding.js';
import { MAILBOX_DEADLINE_MS, mapAtSubmit, type SubmitMapTarget } from '../../drivers/submit_map.js';
import type { Kernel } from '../../kernel/kernel.js';
import type { Mm } from '../../kernel/mm.js';

/** A capture's map (its buffer's VA and its post's sequence, CAM_ARG_MAP_SEQ), or the release of a buffer the camera is done with. */
type Op = { readonly kind: 'map'; readonly va: number; readonly seq: number; readonly index: number } | { readonly kind: 'release'; readonly va: number };

export class SubmitMaps {
  /**
   * Maps and releases not started, in order: one at a time, so a release
   * of a buffer never overtakes the map of a later capture into it (it
   * would give back that capture's fresh mappings).
   */
  private readonly ops: Op[] = [];
  private readonly target: SubmitMapTarget | null;
  /** Captures submitted and not completed, per buffer VA. */
  private readonly live = new Map<number, number>();
  /** Sequence of the post announced last. */
  private seq: number;
  /** Captures submitted, and completions reaped (captures complete in order). */
  private submittedCount = 0;
  private completedCount = 0;
  /** The buffer of the post made last: the camera's capture once it took that post. */
  private postedVa = -1;
  private inFlight: Promise<void> | null = null;
  /** Pages posted, posts without entries (the camera faulted those buffers), buffers released at a capture's end. */
  pagesPosted = 0;
  emptyPosts = 0;
  released = 0;

  constructor(
    private readonly kernel: Kernel,
    private readonly exporter: BarExporter,
    binding: ImporterBinding,
    private readonly camera: string,
    private readonly mm: Mm,
    private readonly framePages: number,
    /** Pages from a buffer's start the camera drops at a capture's end (CAM_ARG_DROP_PAGES), released then. */
    private readonly dropPages: number,
  ) {
    this.target = binding.submitMapTarget();
    this.seq = this.target ? Atomics.load(this.target.map, DriverMap.postSeq) : 0;
  }

  /** The mailbox the camera waits on (the 'chain' command), or null when captures carry no sequence. */
  get mailbox(): SharedArrayBuffer | null {
    return (this.target?.map.buffer as SharedArrayBuffer | undefined) ?? null;
  }

  /** A capture into the buffer at `va` is being submitted; returns its CAM_ARG_MAP_SEQ (0: none, the camera faults). */
  submitted(va: number): number {
    if (!this.target) return 0;
    const seq = (this.seq = (this.seq + 1) | 0);
    this.live.set(va, (this.live.get(va) ?? 0) + 1);
    this.ops.push({ kind: 'map', va, seq, index: this.submittedCount++ });
    this.pump();
    return seq;
  }

  /**
   * The camera completed its capture into the buffer at `va`; `dropped`:
   * it had its post in time and dropped the buffer's first dropPages
   * translations before completing (CAM_RESULT_DROPPED): those mappings go
   * back to the exporter with no invalidation, unless the map of a later
   * capture into the buffer has started (the mappings are that capture's
   * then; giving them back would leave its post without holds). The
   * release goes before every map not started (a later capture's into the
   * buffer included: it maps the pages again), so they find its slots free
   * without a revoke.
   */
  completed(va: number, dropped: boolean): void {
    const n = this.live.get(va);
    if (!this.target || n === undefined) return;
    this.completedCount++;
    if (n > 1) this.live.set(va, n - 1);
    else this.live.delete(va);
    // Later captures into the buffer whose maps are still queued (captures complete in order: none started if all are queued).
    const queued = this.ops.reduce((k, o) => k + (o.kind === 'map' && o.va === va ? 1 : 0), 0);
    if (dropped && this.dropPages > 0 && queued === n - 1) {
      const at = this.ops.findIndex((o) => o.kind === 'map');
      this.ops.splice(at < 0 ? this.ops.length : at, 0, { kind: 'release', va });
    }
    this.pump();
  }

  /** Resolves once no map or release is in flight (before the binding closes). */
  async settled(): Promise<void> {
    while (this.inFlight) await this.inFlight;
  }

  /**
   * Starts the next op, if none is in flight; the map of capture k once
   * capture k - 2 completed (the camera is then on capture k - 1 at the
   * latest, and the buffer it released is free for this map).
   */
  private pump(): void {
    const t = this.target;
    const op = this.ops[0];
    if (!t || !op || this.inFlight) return;
    if (op.kind === 'map' && op.index - 1 > this.completedCount) return;
    this.ops.shift();
    this.inFlight = (op.kind === 'map' ? this.map(t, op.va) : this.release(t, op.va)).finally(() => {
      this.inFlight = null;
      this.pump();
    });
  }

  private async map(t: SubmitMapTarget, va: number): Promise<void> {
    try {
      const n = await mapAtSubmit(t, va, this.framePages, true, () => this.keep(va));
      if (n > 0) this.pagesPosted += n;
      else if (n === 0) this.emptyPosts++;
      else this.kernel.log.push(`${this.camera}: no post for the capture into 0x${va.toString(16)} (the camera took no post for ${MAILBOX_DEADLINE_MS} ms); it waits out its fence, then faults`);
      if (n >= 0) this.postedVa = va;
    } catch (e) {
      this.kernel.log.push(`${this.camera}: map at submission of 0x${va.toString(16)} failed: ${e instanceof Error ? e.message : String(e)}`);
    }
  }

  private async release(t: SubmitMapTarget, va: number): Promise<void> {
    await t.releaseDropped(va, va + this.dropPages * PAGE_SIZE);
    this.released++;
  }

  /**
   * Once the camera took the last post (it works on that capture now):
   * keeps that capture's buffer and the one about to be mapped, so the
   * map's recycling takes slots of buffers the camera is done with.
   */
  private keep(va: number): void {
    const len = this.framePages * PAGE_SIZE;
    const ranges = [{ start: va, end: va + len }];
    if (this.postedVa >= 0 && this.postedVa !== va) ranges.push({ start: this.postedVa, end: this.postedVa + len });
    this.exporter.keepFor(this.camera, this.mm, ranges);
  }
}
