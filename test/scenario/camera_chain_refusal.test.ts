// A topology without P2P: p2p mode is refused up front with the reason, or, with
// 'fallback: bounce', the chain runs through system RAM and says why.
import t from 'tap';
import { loadScenarioFile } from '../../src/scenario/load.js';
import { runScenario } from '../../src/scenario/run.js';
import { P2pRefusedError } from '../../src/errors.js';
import { details } from '../fixtures/camera_chain.js';
import { checkFallbackSummary } from '../fixtures/summary_width.js';

t.test('a topology without P2P refuses p2p mode up front, with the reason', async (t) => {
  const s = await loadScenarioFile('test/fixtures/scenarios/chain-two-rc.yaml');
  await t.rejects(runScenario(s), P2pRefusedError);
  await t.rejects(runScenario(s), { message: /^p2p mode refused for camera-chain: the topology does not allow it\ncc0 -> cam0: .*8086:29c0.*\n\(set 'fallback: bounce' under workload to run through system RAM instead\)$/s });
});

t.test('fallback: bounce runs through system RAM and says why', async (t) => {
  const s = await loadScenarioFile('test/fixtures/scenarios/chain-two-rc.yaml');
  Object.assign(s.workload!, { fallback: 'bounce' });
  const r = await runScenario(s);
  t.equal(r.requestedMode, 'p2p');
  t.equal(r.mode, 'bounce');
  t.match(r.fallback, /^cc0 -> cam0: /);
  t.same(details(r)[0], [true, '2 of 2 frames']);
  // The fabric's reason is over 1000 characters: the summary wraps it within 100 columns.
  checkFallbackSummary(t, 'test/fixtures/scenarios/chain-two-rc.yaml', r);
});
