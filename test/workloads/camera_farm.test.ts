// camera-chain with `pipelines: N` (scenarios/camera-farm.yaml, 16 devices on a generated
// two-socket fabric): every pipeline's frames bit-exact in both modes, one shared start and
// kernel, per-pipeline checks merged into one line; a corrupt frame in one pipeline fails
// the run and the check names that pipeline. Frames are small to keep the file fast.
import t from 'tap';
import { loadScenarioFile, parseScenario } from '../../src/scenario/load.js';
import { runScenario } from '../../src/scenario/run.js';
import { ScenarioError } from '../../src/errors.js';
import type { Scenario } from '../../src/scenario/schema.js';
import { SummaryRuns } from '../fixtures/summary_width.js';

const summaries = new SummaryRuns('scenarios/camera-farm.yaml');

async function small(mutate: (s: Scenario) => void = () => undefined): Promise<Scenario> {
  const s = await loadScenarioFile('scenarios/camera-farm.yaml');
  Object.assign(s.workload!, { frames: 3, width: 64, height: 48 });
  mutate(s);
  return s;
}

t.test('the farm: 16 devices, 8 pipelines, each camera beside its engine on a generated fabric', async (t) => {
  const s = await small();
  t.ok(s.devices.length >= 16, `${s.devices.length} devices`);
  t.equal(s.topology!.rootComplexes.length, 2, 'two root complexes generated');
  const leafOf = new Map<string, string>();
  for (const rc of s.topology!.rootComplexes) for (const top of rc.ports) for (const leaf of top.switch!.ports) for (const p of leaf.switch!.ports) leafOf.set(p.endpoint!.device!, leaf.switch!.name!);
  for (let i = 0; i < 8; i++) t.equal(leafOf.get(`cam${i}`), leafOf.get(`cc${i}`), `cam${i} and cc${i} share a leaf switch`);
});

t.test('p2p: every pipeline bit-exact, frames device to device', async (t) => {
  const r = summaries.keep(await runScenario(await small(), { mode: 'p2p' }));
  const a = r.accounting;
  t.equal(r.mode, 'p2p');
  t.same(a.checks.filter((c) => !c.ok), [], 'every check ok');
  const frames = a.checks.find((c) => c.name === 'frames bit-exact against the CPU reference')!;
  t.match(frames.detail, /^8 of 8 instances pass \(0-7\); instance 0: 3 of 3 frames/);
  t.equal(a.extra.instances, '8 (8 passed every data check)');
  t.equal(a.extra.verified, 24, '8 pipelines x 3 frames verified');
  t.equal(a.devices.length, 16, 'stage times of all 16 devices');
  for (const d of a.devices) t.equal(d.commands, 3, `${d.device} ran its 3 frames`);
  t.equal(a.bounceBytes, 0, 'no frame staged in RAM');
  t.ok(a.p2pBytes >= a.payloadBytes, 'every frame crossed device to device');
});

// Bounce, each pipeline's output in a process of its own (outputs: per-pipeline), with a
// corrupt frame in one pipeline: the other seven pass, the check names the eighth.
t.test('bounce: a corrupt frame in one pipeline fails the run and names that pipeline', async (t) => {
  const s = await small((s) => {
    Object.assign(s.devices.find((d) => d.name === 'cc5')!.props, { 'x-corrupt-frame': 1, 'x-corrupt-offset': 100 });
    Object.assign(s.workload!, { outputs: 'per-pipeline' });
    s.processes = Array.from({ length: 8 }, (_, i) => ({ name: `viewer${i}` }));
  });
  const r = summaries.keep(await runScenario(s, { mode: 'bounce' }));
  const a = r.accounting;
  t.equal(r.mode, 'bounce');
  t.equal(a.p2pBytes, 0, 'bounce: nothing device to device');
  t.equal(a.bounceBytes, 8 * 3 * 64 * 48 * 4 * 2, 'each frame staged in RAM: written, read');
  const bad = a.checks.filter((c) => !c.ok);
  t.same(bad.map((c) => c.name), ['frames bit-exact against the CPU reference']);
  t.match(bad[0].detail, /^7 of 8 instances pass \(0-4, 6-7\):\n  instance 5 \(cam5 -> cc5\): FAIL: 1 of 3 frame\(s\) differ:\n\s+frame 1: byte 100 /);
  t.equal(a.extra.instances, '8 (7 passed every data check, 1 failed)');
});

// The bounce run's summary is the stricter one to fit: beside every line of a passing run
// it has the failing check's per-instance detail.
t.test('both human summaries (16 device rows, merged per-instance checks, the generated fabric\'s reasons) and the --compare table fit 100 columns', async (t) => summaries.check(t));

t.test('pipelines: N names devices <name>0..N-1; a missing one is named', async (t) => {
  const text = `name: x
devices:
  - { name: cam0, kind: camera, memory: 256 KiB }
  - { name: cc0, kind: colour-correction, memory: 4 MiB, bar: 1 MiB }
  - { name: cam1, kind: camera, memory: 256 KiB }
processes: [{ name: v0 }]
workload: { kind: camera-chain, camera: cam, corrector: cc, output: v, outputs: per-pipeline, pipelines: 2 }
`;
  const e = t.throws(() => parseScenario(text, 'x.yaml')) as ScenarioError;
  t.ok(e instanceof ScenarioError);
  t.match(e.message, /workload\.corrector: got "cc1"; expected the name of a device/);
  t.match(e.message, /workload\.output: got "v1"; expected the name of a process/);
  const e2 = t.throws(() => parseScenario(text.replace('camera: cam,', 'camera: cam0,'), 'x.yaml')) as ScenarioError;
  t.match(e2.message, /workload\.camera: got "cam0", a device; with pipelines: 2 it is the prefix of cam00 \.\. cam01 \(write e\.g\. "cam"\)/);
});
