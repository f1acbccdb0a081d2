// The camera chain in both modes, from one --compare run with a seed and a frame count
// given as overrides: every frame bit-exact against the CPU reference, and the
// accounting of each path (BAR slots recycle under the camera in p2p mode).
import t from 'tap';
import { compareScenario } from '../../src/scenario/run.js';
import { FRAME, details, smallChain } from '../fixtures/camera_chain.js';
import { checkSummaries } from '../fixtures/summary_width.js';

// One run of each mode serves every assertion below: a machine boot is the expensive part.
const FRAMES = 3;
const runs = smallChain().then((s) => compareScenario(s, { seed: 77, frames: FRAMES }));

t.test('--compare runs both modes on fresh machines, with the seed and --frames overrides', async (t) => {
  const [p, b] = await runs;
  t.equal(p.mode, 'p2p');
  t.equal(b.mode, 'bounce');
  t.equal(p.seed, 77);
  t.equal(b.seed, 77);
  t.same(details(p)[0], [true, `${FRAMES} of ${FRAMES} frames`], 'the override replaced the file\'s 6 frames');
  t.equal(b.accounting.ramBytes - p.accounting.ramBytes, 2 * FRAMES * FRAME, 'p2p saves the two bounce copies of every frame');
});

t.test('bounce: every frame bit-exact, and the RAM traffic is what a bounce costs', async (t) => {
  const r = (await runs)[1];
  const a = r.accounting;
  t.same(details(r), [
    [true, `${FRAMES} of ${FRAMES} frames`],
    [true, '0 importer(s) checked'],
  ]);
  t.equal(a.payloadBytes, FRAMES * FRAME);
  t.equal(a.ramBytes, 3 * a.payloadBytes, 'camera writes RAM, colour correction reads it and writes the process buffer');
  t.equal(a.bounceBytes, 2 * a.payloadBytes, 'the bounce is two copies of the payload');
  t.equal(a.p2pBytes, 0, 'nothing moves device to device');
  t.equal(a.hostInterventions, 2 * FRAMES, 'the kernel passes every frame along: one CAPTURE and one PROCESS each');
  t.same(a.devices.map((d) => d.commands), [FRAMES, FRAMES]);
  t.ok(a.modeledSeconds > 0, 'the link model priced the transfers');
  t.ok(r.memcpy.rate > 0, 'the memcpy baseline was measured in the same run');
});

t.test('p2p: the camera writes into the engine BAR and drives its queue; slots recycle under it', async (t) => {
  const r = (await runs)[0];
  const a = r.accounting;
  t.same(details(r), [
    [true, `${FRAMES} of ${FRAMES} frames`],
    [true, '1 importer(s) checked'],
  ]);
  t.equal(a.bounceBytes, 0, 'no payload byte is staged in system RAM');
  t.equal(a.ramBytes, a.payloadBytes, 'system RAM sees only the final frames');
  t.ok(a.p2pBytes >= a.payloadBytes, 'every frame crossed device to device');
  t.equal(a.hostInterventions, FRAMES, 'one command per frame: the camera, not the kernel, drives the engine');
  t.same(a.devices.map((d) => d.commands), [FRAMES, FRAMES]);
  t.ok((a.extra['BAR slots recycled'] as number) > 0, 'the BAR window was too small, so slots were recycled');
  t.ok(a.invalidations.sent > 0 && a.invalidations.acked === a.invalidations.sent, 'the camera was invalidated mid-stream and acked every time');
  t.ok((a.extra['page requests'] as number) >= 2, 'and refaulted');
});

t.test('both human summaries and the --compare table fit 100 columns', async (t) => {
  const [p, b] = await runs;
  checkSummaries(t, 'scenarios/camera-chain.yaml', p, b);
});
