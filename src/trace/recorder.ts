/**
 * Records a run's timeline and writes it as Chrome trace-event JSON, which
 * the Perfetto UI (ui.perfetto.dev: "Open trace file") and chrome://tracing
 * open: one process per run (scenario and mode), one track for the kernel
 * (main thread) and one per device worker.
 *
 * The threads record into trace rings (src/shm/trace_ring.ts): each device
 * into the ring in its shared memory, the kernel into one this recorder
 * allocates and installs as the main thread's traceSink. The recorder
 * copies them out every DRAIN_MS while the run goes (a memcpy per ring,
 * so a ring rarely fills and the devices' cores are not taken) and once
 * more when the run ends; records are decoded only when the trace is
 * read: times are already on one clock (epoch ms), made relative to the
 * recorder's start and turned into µs.
 *
 * Lifetime: attach() after Machine.create (the rings exist), detach()
 * before Machine.shutdown; a recorder may record several runs (--compare)
 * one after the other, never two at once (traceSink is per thread).
 * toJSON() nests each track's slices for the viewers (trace_tracks.ts).
 */
import { writeOutputFile } from '../common/output_file_write.js';
import type { Machine } from '../devices/machine.js';
import { nestTracks, SORT_STRIDE, type ChromeTraceEvent } from './trace_tracks.js';

export type { ChromeTraceEvent } from './trace_tracks.js';
import { TRACE_EVENTS, TRACE_RING_RECORDS, TraceEvent, TraceRingReader, TraceWriter, allocTraceRing, decodeRecords, MMU_EVENTS, traceSink, type TraceRecordView } from '../shm/trace_ring.js';

const DRAIN_MS = 25;


const ADDRESS_ARGS = new Set(['va', 'busAddr', 'iova', 'start', 'end']);
const TARGETS = ['ram', 'peer', 'local'];

interface Track {
  readonly tid: number;
  readonly reader: TraceRingReader;
}

/** What to tell a user about a trace file just written: the viewers that open it. */
export function traceViewerHint(file: string): string {
  return `open it at https://ui.perfetto.dev, or offline: npx speedscope ${file}`;
}

export class TraceRecorder {
  private readonly decoded: ChromeTraceEvent[] = [];
  private readonly t0 = performance.timeOrigin + performance.now();
  private tracks: Track[] = [];
  private devices: readonly string[] = [];
  private pid = 0;
  private timer: NodeJS.Timeout | null = null;
  /** Events lost because a ring was full (per run, summed). */
  dropped = 0;

  constructor(readonly records = TRACE_RING_RECORDS) {}

  /** Starts recording the run on `machine` (traced: created with traceRecords), as process `label`. */
  attach(machine: Machine, label: string): void {
    if (this.timer) throw new Error('trace: a run is already being recorded');
    this.pid++;
    this.devices = machine.devices.map((d) => d.spec.name);
    const kernelRing = allocTraceRing(this.records);
    traceSink.w = new TraceWriter(kernelRing);
    traceSink.devices = this.devices;
    this.tracks = [{ tid: 0, reader: new TraceRingReader(kernelRing) }];
    machine.shm.desc.devices.forEach((d, i) => {
      if (!d.trace) throw new Error(`trace: ${d.name} has no trace ring (create the machine with traceRecords)`);
      this.tracks.push({ tid: i + 1, reader: new TraceRingReader(d.trace) });
    });
    this.meta('process_name', 0, { name: label });
    this.meta('thread_name', 0, { name: 'kernel (main thread)' });
    this.meta('thread_sort_index', 0, { sort_index: 0 });
    this.devices.forEach((n, i) => {
      this.meta('thread_name', i + 1, { name: `${n} (${machine.devices[i].spec.kind} worker)` });
      this.meta('thread_sort_index', i + 1, { sort_index: (i + 1) * SORT_STRIDE });
    });
    this.timer = setInterval(() => this.drain(), DRAIN_MS);
    this.timer.unref();
  }

  /** Stops recording: a last drain, and the main thread's sink is off again. */
  detach(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.drain();
    for (const t of this.tracks) this.dropped += t.reader.dropped;
    traceSink.w = null;
    traceSink.devices = [];
    this.tracks = [];
  }

  private opStart = new Map<number, number>();

  /**
   * A stress run's own events (src/stress/run.ts StressOptions.trace), on
   * the kernel track of the run being recorded: each kernel operation as a
   * slice named after it, each violation as an instant. `tUs` is the main
   * thread's performance.now() in µs.
   */
  stressEvent(ev: { readonly ph: 'op-start' | 'op-end' | 'violation'; readonly step: number; readonly name: string; readonly tUs: number }): void {
    const ts = (performance.timeOrigin + ev.tUs / 1000 - this.t0) * 1000;
    if (ev.ph === 'op-start') this.opStart.set(ev.step, ts);
    else if (ev.ph === 'op-end') {
      const start = this.opStart.get(ev.step) ?? ts;
      this.opStart.delete(ev.step);
      this.decoded.push({ name: ev.name, cat: 'stress', ph: 'X', ts: start, dur: ts - start, pid: this.pid, tid: 0, args: { step: ev.step } });
    } else this.decoded.push({ name: `violation: ${ev.name}`, cat: 'stress', ph: 'i', s: 't', ts, pid: this.pid, tid: 0, args: { step: ev.step } });
  }

  private meta(name: string, tid: number, args: Record<string, string | number>): void {
    this.decoded.push({ name, ph: 'M', pid: this.pid, tid, args });
  }

  /** Raw records copied out of the rings during the run, decoded when the trace is written (off the timed window). */
  private raw: { pid: number; tid: number; devices: readonly string[]; words: Float64Array }[] = [];

  private drain(): void {
    for (const t of this.tracks) {
      const words = t.reader.drainRaw();
      if (words.length > 0) this.raw.push({ pid: this.pid, tid: t.tid, devices: this.devices, words });
    }
  }

  /** Decodes what the rings gave into trace events (called by toJSON / the events getter). */
  private decode(): void {
    for (const c of this.raw) decodeRecords(c.words, (r) => this.decoded.push(this.convert(r, c.pid, c.tid, c.devices)));
    this.raw = [];
  }

  private convert(r: TraceRecordView, pid: number, tid: number, devices: readonly string[]): ChromeTraceEvent {
    const def = TRACE_EVENTS[r.code] ?? { name: `event ${r.code}`, cat: 'unknown', args: [] };
    const args: Record<string, string | number> = {};
    def.args.forEach((name, i) => {
      const v = r.args[i];
      if (name === 'device' || name === 'peer' || name === 'exporter') args[name] = devices[v] ?? (v < 0 ? 'host' : v);
      else if (ADDRESS_ARGS.has(name)) args[name] = `0x${v.toString(16)}`;
      else if (name === 'target') args[name] = TARGETS[v] ?? v;
      else if (name === 'event') args[name] = MMU_EVENTS[v] ?? v;
      else if (name === 'toDevice' || name === 'write') args[name] = v ? 'yes' : 'no';
      else args[name] = v;
    });
    if (r.code === TraceEvent.Doorbell) args.device = devices[r.args[0]] ?? r.args[0];
    const ts = (r.t - this.t0) * 1000;
    if (r.dur < 0) return { name: def.name, cat: def.cat, ph: 'i', s: 't', ts, pid, tid, args };
    return { name: def.name, cat: def.cat, ph: 'X', ts, dur: r.dur * 1000, pid, tid, args };
  }

  /** Every event recorded so far (ring records decoded on first ask after a run). */
  get events(): ChromeTraceEvent[] {
    this.decode();
    return this.decoded;
  }

  /** The trace as Chrome trace-event JSON (object form). */
  toJSON(): { traceEvents: ChromeTraceEvent[]; displayTimeUnit: 'ms'; otherData: Record<string, string | number> } {
    return { traceEvents: nestTracks(this.events), displayTimeUnit: 'ms', otherData: { producer: 'peervma', droppedEvents: this.dropped } };
  }

  write(file: string): void {
    writeOutputFile(file, JSON.stringify(this.toJSON()));
  }
}
