// The camera chain's other shapes: IOMMU on (P2P through a whitelisted root complex, by
// IOVA) and the [B] variant (frames land in a third device's memory).
import t from 'tap';
import { loadScenarioFile } from '../../src/scenario/load.js';
import { compareScenario } from '../../src/scenario/run.js';
import { details } from '../fixtures/camera_chain.js';
import { checkSummaries } from '../fixtures/summary_width.js';

t.test('IOMMU on: P2P goes through the whitelisted root complex, every device DMAs by IOVA', async (t) => {
  const s = await loadScenarioFile('scenarios/camera-chain-iommu.yaml');
  Object.assign(s.workload!, { width: 200, height: 150, frames: 3 });
  const [p, b] = await compareScenario(s);
  for (const r of [p, b]) {
    t.same(details(r)[0], [true, '3 of 3 frames'], r.mode);
    t.ok(r.accounting.checks.every((c) => c.ok), `${r.mode}: safety holds`);
    if (r.mode === 'p2p') t.match(r.verdicts, [{ provider: 'cc0', client: 'cam0', map: 'thru-host-bridge' }]);
  }
  checkSummaries(t, 'scenarios/camera-chain-iommu.yaml', p, b);
});

t.test('[B] variant: frames land in a third device; p2p never touches system RAM, bounce bounces twice', async (t) => {
  const s = await loadScenarioFile('scenarios/camera-chain-final.yaml');
  Object.assign(s.workload!, { width: 200, height: 150, frames: 3 });
  const [p, b] = await compareScenario(s);
  for (const r of [p, b]) t.ok(r.accounting.checks.every((c) => c.ok), `${r.mode}: ${details(r).join('; ')}`);
  t.equal(p.accounting.ramBytes, 0, 'p2p: no byte of a frame in system RAM');
  t.equal(p.accounting.p2pBytes >= 2 * p.accounting.payloadBytes, true, 'p2p: camera -> cc0 and cc0 -> gpu0, peer to peer');
  t.equal(p.accounting.hostInterventions, 3, 'p2p: one kernel command per frame');
  t.equal(b.accounting.bounceBytes, 4 * b.accounting.payloadBytes, 'bounce: two bounces of two copies each');
  t.equal(b.accounting.hostInterventions, 9, 'bounce: CAPTURE, PROCESS and the pull into gpu0 per frame');
  t.match(p.verdicts, [{ provider: 'cc0', client: 'cam0' }, { provider: 'gpu0', client: 'cc0', map: 'bus-addr' }]);
  checkSummaries(t, 'scenarios/camera-chain-final.yaml', p, b);
});
