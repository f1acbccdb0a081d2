// --trace: the trace rings (order, a full ring drops and counts instead of
// overwriting) and a small traced run whose Chrome trace-event JSON has the
// kernel track and a track per device, each with its events and arguments;
// the trace as viewers read it: nestTracks (src/trace/trace_tracks.ts) turns
// clock-rounding overlaps and concurrent kernel slices into nested tracks,
// and that run opens in speedscope (offline viewer, headless Chromium) with
// a profile per track and no importer complaint.
import t from 'tap';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LANE_TID, nestTracks, QUANTUM_US } from '../../src/trace/trace_tracks.js';
import { CHROMIUM, currentProfile, launchChromium, openInSpeedscope } from '../../scripts/speedscope_page.js';
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

/** The traced --compare below, opened in speedscope by the last test. */
let traced: TraceRecorder | null = null;

t.test('a traced --compare: valid JSON, a kernel track and a track per device in each run', async (t) => {
  const sc = await loadScenarioFile('scenarios/camera-chain.yaml');
  // Small frames, small BAR: slots recycle, so the camera is invalidated and refaults.
  Object.assign(sc.workload!, { width: 200, height: 150, buffers: 2 });
  Object.assign(sc.devices[1], { memory: 1024 * 1024, bar: 128 * 1024 });
  const rec = new TraceRecorder(16384);
  const [p2p] = await compareScenario(sc, { frames: 4, trace: rec });
  traced = rec;
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

const meta = (tid: number, name: string): ChromeTraceEvent => ({ name: 'thread_name', ph: 'M', pid: 1, tid, args: { name } });
const x = (tid: number, name: string, ts: number, dur: number): ChromeTraceEvent => ({ name, ph: 'X', pid: 1, tid, ts, dur });

t.test('nestTracks: rounding overlaps move, concurrent slices get a lane, equal ends shrink', async (t) => {
  const raw = [
    meta(0, 'kernel'),
    meta(1, 'dev'),
    // device: a DMA that ends 0.3 us after the next compute began (clock rounding)
    x(1, 'DMA', 10, 11.3),
    x(1, 'compute', 21, 80),
    // kernel: two invalidations open at once (async), and a child ending with its parent
    x(0, 'notifier A', 100, 300),
    x(0, 'notifier B', 150, 300),
    x(0, 'ack wait', 120, 280),
    { name: 'ack', ph: 'i', s: 't', pid: 1, tid: 0, ts: 130.01 } as ChromeTraceEvent,
  ];
  t.ok(traceProblems({ traceEvents: raw }).length >= 2, 'the raw events are not viewer-valid (the test can fail)');
  const out = nestTracks(raw);
  t.same(traceProblems({ traceEvents: out }), [], 'nested: viewer-valid');
  const get = (name: string) => out.find((e) => e.name === name)!;
  t.match(get('compute'), { tid: 1, ts: 21.25, dur: 79.75 }, 'compute starts where the DMA ends (on the 1/8 us grid)');
  t.match(get('notifier B'), { tid: LANE_TID }, 'the concurrent invalidation goes to lane 2');
  t.ok(out.some((e) => e.ph === 'M' && e.tid === LANE_TID && e.args?.name === 'kernel [2]'), 'lane 2 is named after its thread');
  t.match(get('ack wait'), { tid: 0, ts: 120, dur: 280 - QUANTUM_US }, 'a child ending with its parent ends one quantum earlier');
  t.match(get('ack'), { ph: 'i', tid: 0, ts: 130 }, 'instants stay on their track, on the grid');
  t.equal(out.filter((e) => e.ph !== 'M').length, 6, 'no event lost');
});

// Without Chromium a developer's `npm test` skips this (as test/trace/report.test.ts).
const missing = existsSync(CHROMIUM) ? false : `${CHROMIUM} is missing: apt-get install chromium to run this test`;

t.test('the traced --compare opens in speedscope: a profile per track, no importer complaint', { skip: process.env.CI ? false : missing }, async (t) => {
  const rec = traced;
  if (!rec) return t.fail('the traced --compare above did not run');
  const file = join(mkdtempSync(join(tmpdir(), 'peervma-trace-')), 'run.json');
  rec.write(file);
  const events = rec.toJSON().traceEvents;
  t.same(traceProblems(rec.toJSON()), [], 'viewer-valid trace');
  const tracks = new Set(events.filter((e) => e.ph === 'X').map((e) => `${e.pid}/${e.tid}`));

  const browser = await launchChromium();
  t.teardown(() => browser.close());
  const { page, complaints, remote } = await openInSpeedscope(browser, file);
  const titles: string[] = [];
  const first = await currentProfile(page);
  t.equal(first.count, tracks.size, `a profile per track with slices (${tracks.size})`);
  for (let i = 0; i < first.count; i++) {
    titles.push((await currentProfile(page)).title);
    await page.keyboard.press('n');
  }
  // The bounce run's kernel has no slices (no mapping, no invalidation), only instants.
  const want = ['(p2p) (pid 1), kernel (main thread) (tid 0)', '(p2p) (pid 1), cam0 (camera worker) (tid 1)', '(p2p) (pid 1), cc0 (colour-correction worker) (tid 2)', '(bounce) (pid 2), cam0 (camera worker) (tid 1)', '(bounce) (pid 2), cc0 (colour-correction worker) (tid 2)'];
  for (const w of want) t.ok(titles.includes(`camera-chain ${w}`), `profile camera-chain ${w}`);
  t.same(complaints, [], 'speedscope imported it without a warning (nesting, open frames)');
  t.same(remote, [], 'offline: no network request');
});
