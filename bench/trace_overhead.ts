/**
 * Cost of trace recording (`--trace`): ns per event into a trace ring
 * (TraceWriter.emit, the call every recording site makes) and per event
 * drained and converted to Chrome JSON on the main thread; and the cost of
 * a recording site when tracing is off (the one `traceSink.w?.` branch).
 * Then whole runs: each scenario named on the command line (default the
 * camera chain and nic-nvme-queue, the most events per byte) in p2p mode,
 * ROUNDS times traced and untraced, alternating so load drifts hit both;
 * compared on the run's timed window (accounting.wallMs), min and median.
 * Prints a line per figure; not a test, nothing is asserted.
 *
 *   npm run build --silent && node dist/bench/trace_overhead.js [scenario.yaml ...]
 */
import { loadScenarioFile } from '../src/scenario/load.js';
import { runScenario } from '../src/scenario/run.js';
import { TraceRecorder } from '../src/trace/recorder.js';
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

const ROUNDS = 8;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
for (const file of process.argv.length > 2 ? process.argv.slice(2) : ['scenarios/camera-chain.yaml', 'scenarios/nic-nvme-queue.yaml']) {
  const sc = await loadScenarioFile(file);
  const off: number[] = [];
  const on: number[] = [];
  let events = 0;
  for (let i = 0; i < ROUNDS; i++) {
    off.push((await runScenario(sc, { mode: 'p2p' })).accounting.wallMs);
    const rec = new TraceRecorder();
    on.push((await runScenario(sc, { mode: 'p2p', trace: rec })).accounting.wallMs);
    events = rec.events.length;
  }
  const f = (xs: number[]) => `min ${Math.min(...xs).toFixed(1)} ms, median ${median(xs).toFixed(1)} ms`;
  console.log(`${sc.name} (p2p, ${ROUNDS} runs each, alternating): untraced ${f(off)}; traced (${events} events) ${f(on)}; median ratio ${(median(on) / median(off)).toFixed(3)}`);
}
