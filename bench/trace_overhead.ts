/**
 * Cost of trace recording (`--trace`): ns per event into a trace ring
 * (TraceWriter.emit, the call every recording site makes) and per event
 * drained and converted to Chrome JSON on the main thread; and the cost of
 * a recording site when tracing is off (the one `traceSink.w?.` branch).
 * Prints a line per figure; not a test, nothing is asserted.
 *
 *   npm run build --silent && node dist/bench/trace_overhead.js
 */
import { allocTraceRing, TraceEvent, TraceRingReader, TraceWriter, traceSink } from '../src/shm/trace_ring.js';

const N = 2_000_000;
const ring = allocTraceRing(N);
const w = new TraceWriter(ring);
const r = new TraceRingReader(ring);

function perEvent(label: string, f: () => void): number {
  let best = Infinity;
  for (let rep = 0; rep < 5; rep++) {
    const t0 = performance.now();
    f();
    best = Math.min(best, ((performance.now() - t0) * 1e6) / N);
  }
  console.log(`${label}: ${best.toFixed(1)} ns per event (best of 5 x ${N})`);
  return best;
}

traceSink.w = null;
let sink = 0;
perEvent('recording site, tracing off (one branch)', () => {
  for (let i = 0; i < N; i++) {
    traceSink.w?.instant(TraceEvent.Doorbell, i);
    sink += i;
  }
});
perEvent('recording site, tracing on (emit into the ring)', () => {
  for (let i = 0; i < N; i++) w.emit(TraceEvent.Dma, w.now(), 0.01, 65536, 1, i * 4096, 1, 2);
  r.drain(() => undefined);
});
for (let i = 0; i < N; i++) w.emit(TraceEvent.Dma, w.now(), 0.01, 65536, 1, i * 4096, 1, 2);
let t0 = performance.now();
let n = 0;
r.drain(() => n++);
console.log(`drain (read only): ${(((performance.now() - t0) * 1e6) / n).toFixed(1)} ns per event`);
void sink;
