// --trace: the trace rings (order, a full ring drops and counts instead of
// overwriting) and a small traced run whose Chrome trace-event JSON has the
// kernel track and a track per device, each with its events and arguments.
import t from 'tap';
import { loadScenarioFile } from '../../src/scenario/load.js';
import { compareScenario } from '../../src/scenario/run.js';
import { allocTraceRing, decodeRecords, TraceEvent, TraceRingReader, TraceWriter, traceSink, type TraceRecordView } from '../../src/shm/trace_ring.js';
import { TraceRecorder, type ChromeTraceEvent } from '../../src/trace/recorder.js';
import { traceProblems } from './trace_valid.js';

t.test('ring: records come out in order; a full ring drops and counts', async (t) => {
  const sab = allocTraceRing(4);
  const w = new TraceWriter(sab);
  const r = new TraceRingReader(sab);
  for (let i = 0; i < 6; i++) w.instant(TraceEvent.Doorbell, i);
  const got: TraceRecordView[] = [];
  t.equal(r.drain((x) => got.push(x)), 4);
  t.same(got.map((x) => x.args[0]), [0, 1, 2, 3], 'the oldest four, in order');
  t.equal(r.dropped, 2, 'two events lost, counted');
  w.slice(TraceEvent.Dma, w.now() - 1, 4096);
  got.length = 0;
  r.drain((x) => got.push(x));
  t.equal(got.length, 1, 'slots are reused once drained');
  t.ok(got[0].dur >= 1, 'a slice carries its duration');
  // drainRaw across the end of the ring: head is at 5, so slots 1..3 then 0.
  for (let i = 10; i < 14; i++) w.instant(TraceEvent.Doorbell, i);
  const raw: number[] = [];
  decodeRecords(r.drainRaw(), (x) => raw.push(x.args[0]));
  t.same(raw, [10, 11, 12, 13], 'a raw copy keeps the order across the wrap');
  t.equal(r.drainRaw().length, 0, 'and releases the slots');
});

t.test('a traced --compare: valid JSON, a kernel track and a track per device in each run', async (t) => {
  const sc = await loadScenarioFile('scenarios/camera-chain.yaml');
  // Small frames, small BAR: slots recycle, so the camera is invalidated and refaults.
  Object.assign(sc.workload!, { width: 200, height: 150, buffers: 2 });
  Object.assign(sc.devices[1], { memory: 1024 * 1024, bar: 128 * 1024 });
  const rec = new TraceRecorder(16384);
  const [p2p] = await compareScenario(sc, { frames: 4, trace: rec });
  t.equal(traceSink.w, null, 'the kernel sink is off after the run');
  const json = JSON.parse(JSON.stringify(rec.toJSON())) as { traceEvents: ChromeTraceEvent[] };
  const ev = json.traceEvents;
  t.same(traceProblems(json), [], 'viewer-valid: named tracks, start order, nested slices');
  const names = (pid: number, tid: number) => new Set(ev.filter((e) => e.pid === pid && e.tid === tid && e.ph !== 'M').map((e) => e.name));
  const thread = (pid: number, tid: number) => ev.find((e) => e.ph === 'M' && e.name === 'thread_name' && e.pid === pid && e.tid === tid)?.args?.name;
  t.same([1, 2].map((pid) => ev.find((e) => e.name === 'process_name' && e.pid === pid)?.args?.name), ['camera-chain (p2p)', 'camera-chain (bounce)']);
  for (const pid of [1, 2]) {
    t.equal(thread(pid, 0), 'kernel (main thread)');
    t.equal(thread(pid, 1), 'cam0 (camera worker)');
    t.equal(thread(pid, 2), 'cc0 (colour-correction worker)');
    for (const tid of [1, 2]) t.ok(names(pid, tid).has('DMA') && names(pid, tid).has('compute'), `run ${pid}, device track ${tid}: DMA and compute`);
    t.ok(names(pid, 0).has('host interrupt'), `run ${pid}: the kernel track has host interrupts`);
  }
  // p2p: the slot recycling story, on both sides.
  t.ok(p2p.accounting.invalidations.sent > 0, 'the run did invalidate');
  for (const n of ['mmu notifier invalidate (start..end)', 'invalidation', 'ack received', 'BAR slots recycled', 'map (page request served)']) t.ok(names(1, 0).has(n), `kernel: ${n}`);
  for (const n of ['page request', 'invalidation ack', 'doorbell']) t.ok(names(1, 1).has(n), `camera: ${n}`);
  const inv = ev.filter((e) => e.pid === 1 && e.name === 'invalidation');
  t.equal(inv.length, p2p.accounting.invalidations.acked, 'one invalidation slice per acked batch');
  t.match(inv[0], { ph: 'X', args: { device: 'cam0', start: /^0x[0-9a-f]+$/ } });
  const dma = ev.find((e) => e.pid === 1 && e.tid === 1 && e.name === 'DMA')!;
  t.match(dma.args, { target: 'peer', peer: 'cc0', write: 'yes' });
  const ts = ev.filter((e) => e.ph !== 'M').map((e) => e.ts!);
  t.ok(ts.every((x) => x >= 0 && Number.isFinite(x)), 'one clock: every timestamp after the recorder started');
});
