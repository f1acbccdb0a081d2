// cc0's driver exports the input buffers with an unused page between two (p2p mode), so
// the camera's request for its next buffer is not a continuation of the hold just behind
// it: drop-behind gives up the buffer just written (needed furthest), not the one the
// camera writes next. One pipeline of camera-farm's shape: 3 buffers of 75 pages behind
// a 192-slot BAR window, 4 frames (buffers 0, 1, 2, 0).
import t from 'tap';
import { loadScenarioFile } from '../../src/scenario/load.js';
import { runScenario } from '../../src/scenario/run.js';
import { details } from '../fixtures/camera_chain.js';

t.test('p2p, buffers a page apart: the fourth frame finds its buffer still mapped (no refault)', async (t) => {
  const s = await loadScenarioFile('scenarios/camera-chain.yaml');
  Object.assign(s.workload!, { width: 320, height: 240, frames: 4, buffers: 3 });
  Object.assign(s.devices[1], { memory: 4 * 1024 * 1024, bar: 768 * 1024 });
  const r = await runScenario(s, { mode: 'p2p' });
  t.same(details(r)[0], [true, '4 of 4 frames']);
  t.ok(r.accounting.checks.every((c) => c.ok), 'safety holds');
  // Frame 2's buffer is 34 pages short of the window (3 x 75 + the ring > 192 slots): those
  // come from buffer 1 (just written). Drop-behind took them from buffer 0's tail when the
  // buffers were adjacent (that hold then counted as the window still being written), and
  // frame 3 refaulted 34 pages and revoked again.
  t.equal(r.accounting.refaults, 0, 'no page faulted in again after an invalidation');
  // 37 with the gap, 69 without: one buffer's shortfall (34) plus the ring's and the premapped gap pages' slots.
  t.ok(Number(r.accounting.extra['BAR slots recycled']) <= 40, `one buffer's shortfall recycled, not two (${r.accounting.extra['BAR slots recycled']})`);
});
