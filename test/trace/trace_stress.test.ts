// stress --trace: a short seeded stress run recorded: the kernel track carries every
// kernel operation as a slice plus invalidations and acks, each importer track its
// DMA, page requests and invalidation acks.
import t from 'tap';
import { runStress } from '../../src/stress/run.js';
import { TraceRecorder } from '../../src/trace/recorder.js';
import { traceProblems } from './trace_valid.js';

t.test('a traced stress run', async (t) => {
  const rec = new TraceRecorder(16384);
  const r = await runStress({ seed: 3, ops: 30, importers: 2, iommu: false, gapMaxUs: 0, recorder: rec, trace: (ev) => rec.stressEvent(ev) });
  t.equal(r.violationCount, 0);
  const ev = JSON.parse(JSON.stringify(rec.toJSON())).traceEvents as { name: string; cat?: string; ph: string; tid: number; args?: Record<string, unknown> }[];
  const on = (tid: number) => new Set(ev.filter((e) => e.tid === tid && e.ph !== 'M').map((e) => e.name));
  t.equal(ev.filter((e) => e.cat === 'stress' && e.ph === 'X').length, r.ops, 'one slice per kernel operation');
  for (const n of ['invalidation', 'ack received']) t.ok(on(0).has(n), `kernel: ${n}`);
  for (const tid of [1, 2]) for (const n of ['DMA', 'page request', 'invalidation ack']) t.ok(on(tid).has(n), `imp${tid - 1}: ${n}`);
  const threads = ev.filter((e) => e.name === 'thread_name').map((e) => String(e.args?.name));
  t.same(threads.slice(0, 4), ['kernel (main thread)', 'imp0 (x-stress worker)', 'imp1 (x-stress worker)', 'exp0 (x-stress worker)']);
  // Kernel operations run concurrently (async): overlapping slices go to lanes of the kernel track.
  const others = threads.slice(4).filter((n) => !/^kernel \(main thread\) \[\d+\]$/.test(n));
  t.same(others, [], 'the other tracks are kernel overlap lanes (a device track with lanes has slices that overlap without nesting)');
  t.same(traceProblems({ traceEvents: ev }), [], 'viewer-valid');
});
