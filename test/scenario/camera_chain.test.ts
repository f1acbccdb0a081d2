// The camera chain end to end in both modes: every frame bit-exact against the CPU
// reference, the accounting of each path, BAR recycling under pressure in p2p mode,
// the topology's refusal and the bounce fallback, and a corrupted byte caught by name.
import t from 'tap';
import { loadScenarioFile } from '../../src/scenario/load.js';
import { compareScenario, runScenario } from '../../src/scenario/run.js';
import { assertChecks } from '../../src/trace/summary.js';
import { P2pRefusedError, VerifyError } from '../../src/errors.js';
import type { Scenario } from '../../src/scenario/schema.js';

const FRAME = 200 * 150 * 4; // 120000 bytes: not a whole number of pages nor of 64 KiB bursts

async function smallChain(mutate: (s: Scenario) => void = () => undefined): Promise<Scenario> {
  const s = await loadScenarioFile('scenarios/camera-chain.yaml');
  Object.assign(s.workload!, { width: 200, height: 150, frames: 6, buffers: 2 });
  // cc0: 1 MiB of memory behind a 128 KiB BAR window (32 slots) for 2 x 30 pages of buffers + the ring.
  Object.assign(s.devices[1], { memory: 1024 * 1024, bar: 128 * 1024 });
  mutate(s);
  return s;
}

const details = (r: { accounting: { checks: readonly { ok: boolean; detail: string }[] } }) => r.accounting.checks.map((c) => [c.ok, c.detail]);

t.test('bounce: every frame bit-exact, and the RAM traffic is what a bounce costs', async (t) => {
  const r = await runScenario(await smallChain(), { mode: 'bounce' });
  const a = r.accounting;
  t.equal(r.mode, 'bounce');
  t.same(details(r), [
    [true, '6 of 6 frames'],
    [true, '0 importer(s) checked'],
  ]);
  t.equal(a.payloadBytes, 6 * FRAME);
  t.equal(a.ramBytes, 3 * a.payloadBytes, 'camera writes RAM, colour correction reads it and writes the process buffer');
  t.equal(a.bounceBytes, 2 * a.payloadBytes, 'the bounce is two copies of the payload');
  t.equal(a.p2pBytes, 0, 'nothing moves device to device');
  t.equal(a.hostInterventions, 12, 'the kernel passes every frame along: one CAPTURE and one PROCESS each');
  t.same(a.devices.map((d) => d.commands), [6, 6]);
  t.ok(a.modeledSeconds > 0, 'the link model priced the transfers');
  t.ok(r.memcpy.rate > 0, 'the memcpy baseline was measured in the same run');
});

t.test('p2p: the camera writes into the engine BAR and drives its queue; slots recycle under it', async (t) => {
  const r = await runScenario(await smallChain());
  const a = r.accounting;
  t.equal(r.mode, 'p2p');
  t.same(details(r), [
    [true, '6 of 6 frames'],
    [true, '1 importer(s) checked'],
  ]);
  t.equal(a.bounceBytes, 0, 'no payload byte is staged in system RAM');
  t.equal(a.ramBytes, a.payloadBytes, 'system RAM sees only the final frames');
  t.ok(a.p2pBytes >= a.payloadBytes, 'every frame crossed device to device');
  t.equal(a.hostInterventions, 6, 'one command per frame: the camera, not the kernel, drives the engine');
  t.same(a.devices.map((d) => d.commands), [6, 6]);
  t.ok((a.extra['BAR slots recycled'] as number) > 0, 'the BAR window was too small, so slots were recycled');
  t.ok(a.invalidations.sent > 0 && a.invalidations.acked === a.invalidations.sent, 'the camera was invalidated mid-stream and acked every time');
  t.ok((a.extra['camera page requests'] as number) >= 2, 'and refaulted');
});

t.test('another seed and a --frames override also run exact', async (t) => {
  const r = await runScenario(await smallChain(), { seed: 77, frames: 3 });
  t.equal(r.seed, 77);
  t.same(details(r)[0], [true, '3 of 3 frames']);
});

t.test('--compare runs both modes on fresh machines', async (t) => {
  const [p, b] = await compareScenario(await smallChain(), { frames: 2 });
  t.equal(p.mode, 'p2p');
  t.equal(b.mode, 'bounce');
  t.equal(b.accounting.ramBytes - p.accounting.ramBytes, 2 * 2 * FRAME, 'p2p saves the two bounce copies of every frame');
});

t.test('IOMMU on: P2P goes through the whitelisted root complex, every device DMAs by IOVA', async (t) => {
  const s = await loadScenarioFile('scenarios/camera-chain-iommu.yaml');
  Object.assign(s.workload!, { width: 200, height: 150, frames: 3 });
  for (const mode of ['p2p', 'bounce'] as const) {
    const r = await runScenario(s, { mode });
    t.same(details(r)[0], [true, '3 of 3 frames'], mode);
    t.ok(r.accounting.checks.every((c) => c.ok), `${mode}: safety holds`);
    if (mode === 'p2p') t.match(r.verdicts, [{ provider: 'cc0', client: 'cam0', map: 'thru-host-bridge' }]);
  }
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
});

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
});

t.test('a camera that ignores invalidations fails the run: the safety checker sees it (IOMMU off)', async (t) => {
  const s = await smallChain((s) => Object.assign(s.devices[0], { 'x-ignore-invalidations': true }));
  const r = await runScenario(s);
  const safety = r.accounting.checks.find((c) => c.name.startsWith('safety'))!;
  t.equal(safety.ok, false);
  t.match(safety.detail, /^cam0: \d+ violation\(s\) \(remapped/);
  t.throws(() => assertChecks(r), VerifyError);
});

t.test('one corrupted byte is detected and named by frame and offset, in both modes', async (t) => {
  for (const mode of ['p2p', 'bounce'] as const) {
    const s = await smallChain((s) => Object.assign(s.devices[1].props, { 'x-corrupt-frame': 4, 'x-corrupt-offset': 70001 }));
    const r = await runScenario(s, { mode });
    const c = r.accounting.checks[0];
    t.equal(c.ok, false, mode);
    t.match(c.detail, /^1 of 6 frame\(s\) differ:\n {2}frame 4: byte 70001 is 0x[0-9a-f]+, reference 0x[0-9a-f]+ \(1 byte\(s\) differ\)$/);
    t.throws(() => assertChecks(r), VerifyError);
  }
});
