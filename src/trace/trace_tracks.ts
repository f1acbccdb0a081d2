/**
 * Makes the slices of every track nest, as trace viewers require: on one
 * thread track a complete ('X') slice must lie inside the one it starts in
 * or start after it ends (Perfetto drops a slice that ends outside its
 * parent; speedscope warns "Tried to end ... when ..." and re-stacks). Our
 * recordings break that in two ways:
 *
 *   1. clock rounding: a slice's start and duration come from epoch-ms
 *      doubles (~0.25 us apart at today's epoch), so a DMA slice may end a
 *      few ns after the compute slice that follows it began. An overlap up
 *      to ROUNDING_US moves the later slice's start to the earlier one's end.
 *   2. real concurrency on the kernel track: the main thread is async, and
 *      two mmu notifier invalidations (start..end spans an await for the
 *      acks) can be open at once. Such a slice goes to an overlap lane, a
 *      track of its own next to its thread ("kernel (main thread) [2]").
 *
 * Times are put on a grid of QUANTUM_US first: a multiple of 1/8 us is
 * exact in binary and in integer ns, so a viewer that subtracts the first
 * timestamp (speedscope) or converts to ns (Perfetto) computes the same
 * start and end we checked. A slice ending exactly where its parent ends
 * ends one quantum earlier: speedscope closes equal ends parent-first.
 *
 * Output order: metadata first, then each track's events by start time
 * (a slice before the slices it contains).
 */
/** One Chrome trace event (the subset we write). */
export interface ChromeTraceEvent {
  readonly name: string;
  readonly cat?: string;
  readonly ph: 'X' | 'i' | 'M';
  readonly ts?: number;
  readonly dur?: number;
  readonly s?: 't';
  readonly pid: number;
  readonly tid: number;
  readonly args?: Record<string, string | number>;
}

/** Thread sort indices are tid * SORT_STRIDE: a thread's overlap lanes sort right after it. */
export const SORT_STRIDE = 100;

/** Time grid of the written trace, in µs (125 ns). */
export const QUANTUM_US = 0.125;
/** Largest overlap treated as clock rounding, in µs (above it: concurrency). */
const ROUNDING_US = 1;
/** Lane k of thread tid is tid + k * LANE_TID (device tids stay far below). */
export const LANE_TID = 1000;

const end = (e: ChromeTraceEvent) => e.ts! + (e.dur ?? 0);
const byStart = (a: ChromeTraceEvent, b: ChromeTraceEvent) => a.ts! - b.ts! || (b.dur ?? 0) - (a.dur ?? 0);

const grid = (us: number) => Math.round(us / QUANTUM_US) * QUANTUM_US;

/** `e` with its start and end on the grid (metadata as is). */
function onGrid(e: ChromeTraceEvent): ChromeTraceEvent {
  if (e.ph === 'M') return e;
  const ts = grid(e.ts!);
  return e.ph === 'X' ? { ...e, ts, dur: grid(end(e)) - ts } : { ...e, ts };
}

/** Stack of the slices open at the current start time, per lane. */
type Lane = ChromeTraceEvent[];

/** Where `e` fits on `lane` (popping the slices it starts after), or null; may move e's start (rounding). */
function fit(lane: Lane, e: ChromeTraceEvent): ChromeTraceEvent | null {
  while (lane.length > 0 && end(lane[lane.length - 1]) <= e.ts!) lane.pop();
  let x = e;
  while (lane.length > 0) {
    const top = lane[lane.length - 1];
    const over = end(top) - x.ts!;
    if (end(x) < end(top)) return x;
    if (end(x) === end(top)) return { ...x, dur: Math.max(0, x.dur! - QUANTUM_US) };
    if (over > ROUNDING_US) return null;
    x = { ...x, ts: end(top), dur: end(x) - end(top) };
    lane.pop();
  }
  return x;
}

/** Places one track's slices on lanes; returns them with their lane numbers. */
function placeTrack(slices: readonly ChromeTraceEvent[]): { e: ChromeTraceEvent; lane: number }[] {
  const lanes: Lane[] = [];
  const out: { e: ChromeTraceEvent; lane: number }[] = [];
  for (const e of [...slices].sort(byStart)) {
    let placed = false;
    for (let k = 0; k < lanes.length && !placed; k++) {
      // Probe on a copy: a lane that refuses must keep its stack.
      const probe = [...lanes[k]];
      const x = fit(probe, e);
      if (x === null) continue;
      probe.push(x);
      lanes[k] = probe;
      out.push({ e: x, lane: k });
      placed = true;
    }
    if (!placed) {
      lanes.push([e]);
      out.push({ e, lane: lanes.length - 1 });
    }
  }
  return out;
}

/** The events with every track's slices nested (see the top comment); instants and metadata keep their track. */
export function nestTracks(events: readonly ChromeTraceEvent[]): ChromeTraceEvent[] {
  const meta = events.filter((e) => e.ph === 'M');
  const tracks = new Map<string, ChromeTraceEvent[]>();
  for (const e of events.map(onGrid)) {
    if (e.ph === 'M') continue;
    const k = `${e.pid}/${e.tid}`;
    if (!tracks.has(k)) tracks.set(k, []);
    tracks.get(k)!.push(e);
  }
  const out: ChromeTraceEvent[] = [];
  const extra: ChromeTraceEvent[] = [];
  const threadName = (pid: number, tid: number) => meta.find((m) => m.name === 'thread_name' && m.pid === pid && m.tid === tid)?.args?.name ?? `thread ${tid}`;
  for (const evs of tracks.values()) {
    const { pid, tid } = evs[0];
    const placed = placeTrack(evs.filter((e) => e.ph === 'X'));
    const lanes = new Set(placed.map((p) => p.lane));
    for (const k of [...lanes].filter((k) => k > 0).sort((a, b) => a - b)) {
      extra.push({ name: 'thread_name', ph: 'M', pid, tid: tid + k * LANE_TID, args: { name: `${threadName(pid, tid)} [${k + 1}]` } });
      extra.push({ name: 'thread_sort_index', ph: 'M', pid, tid: tid + k * LANE_TID, args: { sort_index: tid * SORT_STRIDE + k } });
    }
    const laid = [...placed.map((p) => (p.lane === 0 ? p.e : { ...p.e, tid: tid + p.lane * LANE_TID })), ...evs.filter((e) => e.ph !== 'X')];
    out.push(...laid.sort((a, b) => a.tid - b.tid || byStart(a, b)));
  }
  return [...meta, ...extra, ...out];
}
