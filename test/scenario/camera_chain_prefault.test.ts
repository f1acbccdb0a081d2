// p2p mode: before the stream, the camera translates the buffers cc0's exporter premapped
// whole into its BAR window, and the ring (va-prefault), so the stream's page requests are
// only those the window's shortfall makes. One pipeline of camera-farm's shape: 3 buffers of 75 pages (a page
// apart) behind a 192-slot window, 4 frames (buffers 0, 1, 2, 0).
import t from 'tap';
import { loadScenarioFile } from '../../src/scenario/load.js';
import { runScenario } from '../../src/scenario/run.js';
import { details } from '../fixtures/camera_chain.js';

t.test('p2p: the premapped buffers and the ring are translated before the stream; the stream asks only for the buffer the window cannot hold', async (t) => {
  const s = await loadScenarioFile('scenarios/camera-chain.yaml');
  Object.assign(s.workload!, { width: 320, height: 240, frames: 4, buffers: 3 });
  Object.assign(s.devices[1], { memory: 4 * 1024 * 1024, bar: 768 * 1024 });
  const r = await runScenario(s, { mode: 'p2p' });
  t.same(details(r)[0], [true, '4 of 4 frames']);
  t.ok(r.accounting.checks.every((c) => c.ok), 'frames bit-exact and safety holds');
  const all = Number(r.accounting.extra['camera page requests']);
  const before = Number(r.accounting.extra['camera page requests before the stream']);
  // Buffers 0 and 1 (whole in the window), the ring's page; not buffer 2's premapped head (one hold per buffer).
  t.equal(before, 3, 'one request per premapped buffer and one for the ring, before the stream');
  // Buffer 2 (its 35 pages past the window from buffer 1's tail), asked ahead once frame 1 is written.
  // Without the prefault the stream made the 3 other cold requests as well.
  t.equal(all - before, 1, `the stream's page requests: the window's shortfall only (${all} in all)`);
  t.equal(r.accounting.refaults, 0, 'no page faulted in again after an invalidation');
});
