// p2p mode: before the stream, the camera translates what cc0's exporter premapped into its
// BAR window (va-prefault), so the stream's page requests are only those the window's
// shortfall makes. One pipeline of camera-farm's shape: 3 buffers of 75 pages (a page
// apart) behind a 192-slot window, 4 frames (buffers 0, 1, 2, 0).
import t from 'tap';
import { loadScenarioFile } from '../../src/scenario/load.js';
import { runScenario } from '../../src/scenario/run.js';
import { details } from '../fixtures/camera_chain.js';

t.test('p2p: the premapped buffers and the ring are translated before the stream; the stream asks only for the shortfall', async (t) => {
  const s = await loadScenarioFile('scenarios/camera-chain.yaml');
  Object.assign(s.workload!, { width: 320, height: 240, frames: 4, buffers: 3 });
  Object.assign(s.devices[1], { memory: 4 * 1024 * 1024, bar: 768 * 1024 });
  const r = await runScenario(s, { mode: 'p2p' });
  t.same(details(r)[0], [true, '4 of 4 frames']);
  t.ok(r.accounting.checks.every((c) => c.ok), 'frames bit-exact and safety holds');
  const all = Number(r.accounting.extra['camera page requests']);
  const before = Number(r.accounting.extra['camera page requests before the stream']);
  // Buffers 0 and 1 whole, buffer 2's first 40 pages (the rest of the window), the ring's page.
  t.equal(before, 4, 'one request per premapped buffer part and one for the ring, before the stream');
  // Buffer 2's other 35 pages, asked ahead once frame 1 is written (slots from buffer 1's tail).
  // Without the prefault the stream made all 4 of the cold requests as well.
  t.equal(all - before, 1, `the stream's page requests: the window's shortfall only (${all} in all)`);
  t.equal(r.accounting.refaults, 0, 'no page faulted in again after an invalidation');
});
