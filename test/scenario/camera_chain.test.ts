// The camera chain end to end (bounce mode): every frame bit-exact against the CPU
// reference, RAM accounting, and a device that corrupts one byte is caught by name.
import t from 'tap';
import { loadScenarioFile } from '../../src/scenario/load.js';
import { runScenario } from '../../src/scenario/run.js';
import { assertChainExact } from '../../src/workloads/camera_chain/run.js';
import { VerifyError } from '../../src/errors.js';
import type { Scenario } from '../../src/scenario/schema.js';

async function smallChain(mutate: (s: Scenario) => void = () => undefined): Promise<Scenario> {
  const s = await loadScenarioFile('scenarios/camera-chain.yaml');
  // 200x150 RGBA = 120000 bytes: not a whole number of pages nor of 64 KiB bursts.
  Object.assign(s.workload, { width: 200, height: 150, frames: 6, buffers: 2 });
  mutate(s);
  return s;
}

t.test('every frame arrives bit-exact and the RAM traffic is what bounce costs', async (t) => {
  const r = await runScenario(await smallChain());
  const res = r.result;
  t.equal(res.verified, 6);
  t.same(res.mismatches, []);
  t.equal(res.frameBytes, 200 * 150 * 4);
  t.equal(res.payloadBytes, 6 * 120000);
  t.equal(res.ramBytes, 3 * res.payloadBytes, 'camera writes RAM, colour correction reads it and writes the process buffer');
  t.equal(res.p2pBytes, 0, 'bounce mode moves nothing device to device');
  t.equal(res.hostCommands, 12, 'the kernel passes every frame along: one CAPTURE and one PROCESS each');
  t.same(res.devices.map((d) => d.commands), [6, 6]);
  t.ok(r.memcpy.rate > 0, 'the memcpy baseline was measured in the same run');
});

t.test('another seed and a --frames override also run exact', async (t) => {
  const r = await runScenario(await smallChain(), { seed: 77, frames: 3 });
  t.equal(r.seed, 77);
  t.equal(r.result.verified, 3);
  t.same(r.result.mismatches, []);
});

t.test('one corrupted byte is detected and named by frame and offset', async (t) => {
  const s = await smallChain((s) => Object.assign(s.devices[1].props, { 'x-corrupt-frame': 4, 'x-corrupt-offset': 70001 }));
  const r = await runScenario(s);
  t.equal(r.result.mismatches.length, 1);
  t.match(r.result.mismatches[0], { frame: 4, mismatchAt: 70001, mismatches: 1 });
  t.throws(() => assertChainExact(r.result), VerifyError);
  t.throws(() => assertChainExact(r.result), { message: /^1 of 6 frame\(s\) differ from the CPU reference:\n {2}frame 4: byte 70001 is 0x[0-9a-f]+, reference 0x[0-9a-f]+ \(1 byte\(s\) differ\)$/ });
});
