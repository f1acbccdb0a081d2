// scaledScenario (src/scenario/scaled.ts): n instances of each workload built in code on a
// generated fabric; each runs in both modes with every instance's data check passing, and
// n = 1 is the single-instance workload (no merged lines). Sizes are tiny to stay fast.
import t from 'tap';
import { scaledScenario, SCALED_KINDS, type ScaledKind } from '../../src/scenario/scaled.js';
import { runScenario } from '../../src/scenario/run.js';
import { mergeChecks } from '../../src/workloads/instances.js';

const TINY: Readonly<Record<ScaledKind, Record<string, unknown>>> = {
  'camera-chain': { frames: 2, width: 64, height: 48 },
  'accel-nic-stream': { results: 3, resultBytes: '256 KiB', revokes: 1 },
  'nic-nvme-queue': { ios: 40 },
  'hmm-peer': { pages: 16, stagePages: 4 },
};

for (const kind of SCALED_KINDS) {
  t.test(`${kind}: 2 instances, both modes, every instance checked`, async (t) => {
    const sc = scaledScenario(kind, 2, { workload: TINY[kind] });
    for (const mode of ['p2p', 'bounce'] as const) {
      const r = await runScenario(sc, { mode });
      t.equal(r.mode, mode);
      t.same(r.accounting.checks.filter((c) => !c.ok), [], `${mode}: every check ok`);
      const data = r.accounting.checks[0];
      t.match(data.detail, /^2 of 2 (instance|importer)s pass \(0-1\)/, `${mode}: ${data.name}`);
      if (mode === 'p2p') t.ok(r.accounting.p2pBytes > 0 && r.verdicts.length === 2, 'two P2P pairs, data device to device');
      else t.equal(r.accounting.p2pBytes, 0);
    }
  });
}

t.test('one instance: the single-instance workload, its checks as they always read', async (t) => {
  const sc = scaledScenario('nic-nvme-queue', 1, { workload: TINY['nic-nvme-queue'] });
  t.same(sc.devices.map((d) => d.name), ['nic0', 'nvme0']);
  const r = await runScenario(sc, { mode: 'p2p' });
  t.same(r.accounting.checks.filter((c) => !c.ok), []);
  t.notMatch(r.accounting.checks[0].detail, /instances pass/);
  t.equal(r.accounting.extra.instances, undefined);
});

t.test('mergeChecks: one line per check; each failing instance named with its detail', async (t) => {
  const ok = (name: string) => ({ name, ok: true, detail: 'fine' });
  const merged = mergeChecks(['a', 'b', 'c', 'd'], [[ok('x'), ok('y')], [ok('x'), { name: 'y', ok: false, detail: 'broke\nhere' }], [ok('x'), ok('y')], [ok('x'), { name: 'y', ok: false, detail: 'also' }]]);
  t.same(merged, [
    { name: 'x', ok: true, detail: '4 of 4 instances pass (0-3); instance 0: fine' },
    { name: 'y', ok: false, detail: '2 of 4 instances pass (0, 2):\n  instance 1 (b): FAIL: broke\n    here\n  instance 3 (d): FAIL: also' },
  ]);
});
