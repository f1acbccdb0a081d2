/**
 * Trace rings: where every thread records timeline events while a run is
 * traced (`peervma run --trace FILE`). One ring per device worker (in the
 * device's shared memory, DeviceShmDesc.trace) and one for the kernel
 * (main thread); src/trace/recorder.ts drains them all and writes
 * Chrome/Perfetto trace-event JSON.
 *
 * Single producer (the thread that owns the ring), single consumer (the
 * main thread's recorder). No postMessage, no allocation per event:
 *
 *   producer (TraceWriter.emit)              consumer (TraceRingReader.drain)
 *   ---------------------------              --------------------------------
 *   h = head (own copy)                       h = Atomics.load(head)
 *   if h - Atomics.load(tail) == cap:         read records [tail, h)
 *     dropped++  (the event is lost, counted) Atomics.store(tail, h)
 *   write record h % cap (8 float64)
 *   Atomics.store(head, h + 1)                [Required: a record is read only
 *                                              after the head that covers it]
 *
 * The store of `head` publishes the record (Atomics orders the plain
 * float64 stores before it); the producer never overwrites a record the
 * consumer has not released through `tail`, so no record is read torn.
 *
 * Clock: every record's time is `performance.timeOrigin + performance.now()`
 * of the producing thread, in ms — one wall clock for every thread, so
 * tracks merge without translation (each worker's performance.now() has
 * its own origin).
 *
 * Costs nothing when tracing is off: the sink holds null and every call
 * site is one `if (w)` (or `w?.`) branch.
 */
import { defineLayout } from './layout.js';

/** Header of a ring, in Int32 words before the records. */
export const TraceRingHead = defineLayout({
  head: { writer: 'both', doc: 'records published (monotonic); the producer (a device worker, or main for the kernel ring) stores it after writing a record' },
  tail: { writer: 'main', doc: 'records the consumer has read; the producer may reuse slots below it' },
  dropped: { writer: 'both', doc: 'events lost because the ring was full (the consumer was behind)' },
  capacity: { writer: 'main', doc: 'records the ring holds, set at allocation' },
});

/** One record: float64 words. */
export const TraceRecord = {
  /** Start, ms since the Unix epoch (performance.timeOrigin + performance.now()). */
  t: 0,
  /** Duration in ms; -1 for an instant event. */
  dur: 1,
  /** TraceEvent code. */
  code: 2,
  /** Arguments a0..a4, named per code in TRACE_EVENTS. */
  a0: 3,
  kWords: 8,
} as const;

/** Event codes; names and argument names in TRACE_EVENTS. */
export const enum TraceEvent {
  Dma = 1,
  Doorbell = 2,
  Msi = 3,
  PageRequest = 4,
  InvalidationAck = 5,
  RunRedone = 6,
  IommuFault = 7,
  Compute = 8,
  Invalidation = 20,
  InvalidationAcked = 21,
  PageRequestServed = 22,
  SlotRecycle = 23,
  Migrate = 24,
  HostIrq = 25,
  MmInvalidation = 26,
}

/** What each code is on the timeline: its name, category and argument names (a0..a4, in order). */
export const TRACE_EVENTS: Readonly<Record<number, { readonly name: string; readonly cat: string; readonly args: readonly string[] }>> = {
  [TraceEvent.Dma]: { name: 'DMA', cat: 'dma', args: ['bytes', 'target', 'busAddr', 'write', 'peer'] },
  [TraceEvent.Doorbell]: { name: 'doorbell', cat: 'queue', args: ['device', 'register', 'value'] },
  [TraceEvent.Msi]: { name: 'MSI to host', cat: 'irq', args: ['queue', 'irqCount'] },
  [TraceEvent.PageRequest]: { name: 'page request', cat: 'fault', args: ['va', 'pages', 'errno', 'refaulted', 'retries'] },
  [TraceEvent.InvalidationAck]: { name: 'invalidation ack', cat: 'invalidation', args: ['seq', 'ranges', 'start', 'end'] },
  [TraceEvent.RunRedone]: { name: 'refault: run redone', cat: 'fault', args: ['va', 'bytes'] },
  [TraceEvent.IommuFault]: { name: 'IOMMU fault', cat: 'iommu', args: ['iova', 'write'] },
  [TraceEvent.Compute]: { name: 'compute', cat: 'compute', args: ['bytes'] },
  [TraceEvent.Invalidation]: { name: 'invalidation', cat: 'invalidation', args: ['device', 'seq', 'ranges', 'start', 'end'] },
  [TraceEvent.InvalidationAcked]: { name: 'ack received', cat: 'invalidation', args: ['device', 'seq', 'latencyUs'] },
  [TraceEvent.PageRequestServed]: { name: 'map (page request served)', cat: 'fault', args: ['device', 'va', 'pages', 'errno'] },
  [TraceEvent.SlotRecycle]: { name: 'BAR slots recycled', cat: 'mapping', args: ['exporter', 'slots', 'firstPage'] },
  [TraceEvent.Migrate]: { name: 'migrate', cat: 'migration', args: ['device', 'pages', 'toDevice'] },
  [TraceEvent.HostIrq]: { name: 'host interrupt', cat: 'irq', args: ['irqCount'] },
  [TraceEvent.MmInvalidation]: { name: 'mmu notifier invalidate (start..end)', cat: 'invalidation', args: ['start', 'end', 'event', 'subscribers'] },
};

/** MmInvalidation `event` argument values (MmuNotifyEvent, in src/kernel/mmu_notifier.ts order). */
export const MMU_EVENTS = ['unmap', 'clear', 'protection', 'migrate', 'release', 'exclusive'] as const;

/** DMA `target` argument values. */
export const DMA_TARGET = { ram: 0, peer: 1, local: 2 } as const;

/** Default ring size: 64 Ki records (4 MiB) per thread. */
export const TRACE_RING_RECORDS = 65536;

const headWords = Math.ceil(TraceRingHead.kBytes / 8) * 2; // keep the records 8-byte aligned

export function allocTraceRing(records = TRACE_RING_RECORDS): SharedArrayBuffer {
  const sab = new SharedArrayBuffer(headWords * 4 + records * TraceRecord.kWords * 8);
  new Int32Array(sab, 0, TraceRingHead.kFieldCount)[TraceRingHead.capacity] = records;
  return sab;
}

/** The producer side; one per ring, used by its owning thread only. */
export class TraceWriter {
  private readonly hdr: Int32Array;
  private readonly rec: Float64Array;
  private readonly cap: number;
  private head: number;
  private readonly origin = performance.timeOrigin;

  constructor(sab: SharedArrayBuffer) {
    this.hdr = new Int32Array(sab, 0, TraceRingHead.kFieldCount);
    this.cap = this.hdr[TraceRingHead.capacity];
    this.rec = new Float64Array(sab, headWords * 4, this.cap * TraceRecord.kWords);
    this.head = Atomics.load(this.hdr, TraceRingHead.head);
  }

  /** The trace clock: ms since the epoch, shared by every thread. */
  now(): number {
    return this.origin + performance.now();
  }

  /** Records one event; `t0` from now(), `dur` -1 for an instant. */
  emit(code: TraceEvent, t0: number, dur: number, a0 = 0, a1 = 0, a2 = 0, a3 = 0, a4 = 0): void {
    const h = this.head;
    if (h - Atomics.load(this.hdr, TraceRingHead.tail) >= this.cap) {
      this.hdr[TraceRingHead.dropped]++;
      return;
    }
    const o = (h % this.cap) * TraceRecord.kWords;
    const r = this.rec;
    r[o] = t0;
    r[o + 1] = dur;
    r[o + 2] = code;
    r[o + 3] = a0;
    r[o + 4] = a1;
    r[o + 5] = a2;
    r[o + 6] = a3;
    r[o + 7] = a4;
    this.head = h + 1;
    // Publishes the record; pairs with the Atomics.load(head) in TraceRingReader.drain.
    Atomics.store(this.hdr, TraceRingHead.head, this.head);
  }

  /** A slice that started at `t0` and ends now. */
  slice(code: TraceEvent, t0: number, a0 = 0, a1 = 0, a2 = 0, a3 = 0, a4 = 0): void {
    this.emit(code, t0, this.now() - t0, a0, a1, a2, a3, a4);
  }

  instant(code: TraceEvent, a0 = 0, a1 = 0, a2 = 0, a3 = 0, a4 = 0): void {
    this.emit(code, this.now(), -1, a0, a1, a2, a3, a4);
  }
}

/** One decoded record. */
export interface TraceRecordView {
  readonly t: number;
  readonly dur: number;
  readonly code: number;
  readonly args: readonly number[];
}

/** The consumer side (main thread). */
export class TraceRingReader {
  private readonly hdr: Int32Array;
  private readonly rec: Float64Array;
  private readonly cap: number;

  constructor(sab: SharedArrayBuffer) {
    this.hdr = new Int32Array(sab, 0, TraceRingHead.kFieldCount);
    this.cap = this.hdr[TraceRingHead.capacity];
    this.rec = new Float64Array(sab, headWords * 4, this.cap * TraceRecord.kWords);
  }

  get dropped(): number {
    return Atomics.load(this.hdr, TraceRingHead.dropped);
  }

  /**
   * Copies every published record out as raw words (TraceRecord.kWords per
   * record, oldest first) and releases their slots: a memcpy, cheap enough
   * to run while devices stream; decode later with decodeRecords().
   */
  drainRaw(): Float64Array {
    const head = Atomics.load(this.hdr, TraceRingHead.head);
    const tail = Atomics.load(this.hdr, TraceRingHead.tail);
    const K = TraceRecord.kWords;
    const out = new Float64Array((head - tail) * K);
    const a = tail % this.cap;
    const first = Math.min(head - tail, this.cap - a);
    out.set(this.rec.subarray(a * K, (a + first) * K), 0);
    if (first < head - tail) out.set(this.rec.subarray(0, (head - tail - first) * K), first * K);
    // Releases the slots; pairs with the Atomics.load(tail) in TraceWriter.emit.
    Atomics.store(this.hdr, TraceRingHead.tail, head);
    return out;
  }

  /** Copies out every published record and releases their slots. */
  drain(out: (r: TraceRecordView) => void): number {
    const head = Atomics.load(this.hdr, TraceRingHead.head);
    let tail = Atomics.load(this.hdr, TraceRingHead.tail);
    const n = head - tail;
    for (; tail < head; tail++) {
      const o = (tail % this.cap) * TraceRecord.kWords;
      const r = this.rec;
      out({ t: r[o], dur: r[o + 1], code: r[o + 2], args: [r[o + 3], r[o + 4], r[o + 5], r[o + 6], r[o + 7]] });
    }
    // Releases the slots; pairs with the Atomics.load(tail) in TraceWriter.emit.
    Atomics.store(this.hdr, TraceRingHead.tail, tail);
    return n;
  }
}

/** Records of a drainRaw() copy, decoded. */
export function decodeRecords(raw: Float64Array, out: (r: TraceRecordView) => void): void {
  for (let o = 0; o < raw.length; o += TraceRecord.kWords) {
    out({ t: raw[o], dur: raw[o + 1], code: raw[o + 2], args: [raw[o + 3], raw[o + 4], raw[o + 5], raw[o + 6], raw[o + 7]] });
  }
}

/**
 * This thread's trace writer: a device worker's ring (set at configure when
 * the machine is traced) or, on the main thread, the kernel's ring (set by
 * the recorder). Null when tracing is off: call sites test it once.
 */
export const traceSink: { w: TraceWriter | null; devices: readonly string[] } = { w: null, devices: [] };

/** A device's index for a kernel event's `device` argument (-1 if unknown); main thread only. */
export function traceDev(name: string): number {
  return traceSink.devices.indexOf(name);
}
