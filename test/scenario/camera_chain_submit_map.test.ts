// The camera's driver maps each capture's buffer at submission (src/drivers/submit_map.ts,
// src/workloads/camera_chain/submit_maps.ts): with three buffers through a BAR window that
// holds two and a bit, the camera makes one page request (its ring) and is never
// invalidated, since the slots the next buffer needs are the ones the driver took back,
// unheld, at the end of the capture before; every frame is still bit-exact and every
// access passes the safety checker.
import t from 'tap';
import { runScenario } from '../../src/scenario/run.js';
import { details, smallChain } from '../fixtures/camera_chain.js';

// 3 buffers of 30 pages + the ring through 64 slots: each buffer's map needs 27 slots back.
const chain = () =>
  smallChain((s) => {
    Object.assign(s.workload!, { buffers: 3, frames: 7 });
    Object.assign(s.devices[1], { bar: 256 * 1024 });
  });

t.test('IOMMU off: mapped at submission, no page request for the buffers, no invalidation', async (t) => {
  const r = await runScenario(await chain(), { mode: 'p2p' });
  const a = r.accounting;
  t.same(details(r), [
    [true, '7 of 7 frames'],
    [true, '1 importer(s) checked'],
  ]);
  t.ok((a.extra['BAR slots recycled'] as number) > 0, 'the window was too small: slots were recycled');
  t.equal(a.extra['camera page requests'], 1, 'one page request: the ring (the buffers came with their captures)');
  t.equal(a.invalidations.sent, 0, 'the recycled slots were the ones given back at captures\' ends, unheld');
});
