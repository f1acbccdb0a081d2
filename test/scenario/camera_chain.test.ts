// The camera chain end to end (bounce mode): every frame bit-exact against the CPU
// reference, RAM accounting, and a device that corrupts one byte is caught by name.
import t from 'tap';
import { loadScenarioFile } from '../../src/scenario/load.js';
import { runScenario } from '../../src/scenario/run.js';
import { assertChecks } from '../../src/trace/summary.js';
import { VerifyError } from '../../src/errors.js';
import type { Scenario } from '../../src/scenario/schema.js';

async function smallChain(mutate: (s: Scenario) => void = () => undefined): Promise<Scenario> {
  const s = await loadScenarioFile('scenarios/camera-chain.yaml');
  // 200x150 RGBA = 120000 bytes: not a whole number of pages nor of 64 KiB bursts.
  Object.assign(s.workload!, { width: 200, height: 150, frames: 6, buffers: 2 });
  mutate(s);
  return s;
}

t.test('every frame arrives bit-exact and the RAM traffic is what bounce costs', async (t) => {
  const r = await runScenario(await smallChain(), { mode: 'bounce' });
  const a = r.accounting;
  t.equal(r.mode, 'bounce');
  t.same(a.checks.map((c) => [c.ok, c.detail]), [[true, '6 of 6 frames']]);
  t.equal(a.payloadBytes, 6 * 120000);
  t.equal(a.ramBytes, 3 * a.payloadBytes, 'camera writes RAM, colour correction reads it and writes the process buffer');
  t.equal(a.bounceBytes, 2 * a.payloadBytes, 'the bounce is two copies of the payload');
  t.equal(a.p2pBytes, 0, 'bounce mode moves nothing device to device');
  t.equal(a.hostInterventions, 12, 'the kernel passes every frame along: one CAPTURE and one PROCESS each');
  t.same(a.devices.map((d) => d.commands), [6, 6]);
  t.ok(a.modeledSeconds > 0, 'the link model priced the transfers');
  t.ok(r.memcpy.rate > 0, 'the memcpy baseline was measured in the same run');
});

t.test('another seed and a --frames override also run exact', async (t) => {
  const r = await runScenario(await smallChain(), { seed: 77, frames: 3, mode: 'bounce' });
  t.equal(r.seed, 77);
  t.same(r.accounting.checks.map((c) => [c.ok, c.detail]), [[true, '3 of 3 frames']]);
});

t.test('one corrupted byte is detected and named by frame and offset', async (t) => {
  const s = await smallChain((s) => Object.assign(s.devices[1].props, { 'x-corrupt-frame': 4, 'x-corrupt-offset': 70001 }));
  const r = await runScenario(s, { mode: 'bounce' });
  const c = r.accounting.checks[0];
  t.equal(c.ok, false);
  t.match(c.detail, /^1 of 6 frame\(s\) differ:\n {2}frame 4: byte 70001 is 0x[0-9a-f]+, reference 0x[0-9a-f]+ \(1 byte\(s\) differ\)$/);
  t.throws(() => assertChecks(r), VerifyError);
});
