// The trace as viewers read it: nestTracks (src/trace/trace_tracks.ts)
// turns clock-rounding overlaps and concurrent kernel slices into nested
// tracks, and a real traced run opens in speedscope (offline viewer,
// headless Chromium) with a profile per track and no importer complaint.
import t from 'tap';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LANE_TID, nestTracks, QUANTUM_US, type ChromeTraceEvent } from '../../src/trace/trace_tracks.js';
import { TraceRecorder } from '../../src/trace/recorder.js';
import { loadScenarioFile } from '../../src/scenario/load.js';
import { compareScenario } from '../../src/scenario/run.js';
import { CHROMIUM, currentProfile, launchChromium, openInSpeedscope } from '../../scripts/speedscope_page.js';
import { traceProblems } from './trace_valid.js';

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

t.test('a traced run opens in speedscope: a profile per track, no importer complaint', { skip: process.env.CI ? false : missing }, async (t) => {
  const sc = await loadScenarioFile('scenarios/camera-chain.yaml');
  // Small frames and BAR: slots recycle, so the kernel track has invalidations.
  Object.assign(sc.workload!, { width: 200, height: 150, buffers: 2 });
  Object.assign(sc.devices[1], { memory: 1024 * 1024, bar: 128 * 1024 });
  const rec = new TraceRecorder(16384);
  await compareScenario(sc, { frames: 4, trace: rec });
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
