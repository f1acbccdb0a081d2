// accel-nic-stream with more accelerators than NICs (`streams: 3, nics: 1`, and 4 over 2):
// one NIC streams from several accelerators at once through its one queue and binding;
// every stream's results checksum-equal to the CPU reference, each with its own seed; the
// NIC is counted once (it reads the whole payload; bounce stages 2x the payload).
import t from 'tap';
import { parseScenario } from '../../src/scenario/load.js';
import { runScenario } from '../../src/scenario/run.js';

function scenario(streams: number, nics: number): ReturnType<typeof parseScenario> {
  const accs = Array.from({ length: streams }, (_, i) => `  - { name: acc${i}, kind: accelerator, memory: 4 MiB, bar: 2 MiB }`);
  const ns = Array.from({ length: nics }, (_, i) => `  - { name: nic${i}, kind: nic, memory: 256 KiB }`);
  return parseScenario(
    `name: groups
devices:
${[...accs, ...ns].join('\n')}
processes: [{ name: streamer }]
topology: { generate: { fanout: 4 } }
workload: { kind: accel-nic-stream, accelerator: acc, nic: ${nics === 1 ? 'nic0' : 'nic'}, streams: ${streams}, nics: ${nics}, process: streamer, resultBytes: 128 KiB, results: 3, revokes: 1 }
`,
    'groups.yaml',
  );
}

for (const mode of ['p2p', 'bounce'] as const) {
  t.test(`${mode}: three accelerators through one NIC`, async (t) => {
    const r = await runScenario(scenario(3, 1), { mode });
    const a = r.accounting;
    t.same(a.checks.filter((c) => !c.ok), [], 'every check ok');
    t.match(a.checks[0].detail, /^3 of 3 streams pass \(0-2\)/);
    t.same(a.devices.map((d) => d.device), ['acc0', 'acc1', 'acc2', 'nic0'], 'the NIC once');
    const nic = a.devices[3];
    t.equal(a.payloadBytes, 3 * 3 * 128 * 1024);
    if (mode === 'p2p') {
      // At least: a run an invalidation cut short is read again.
      t.ok(nic.bytesFromPeer >= a.payloadBytes && nic.bytesFromRam === 0, 'the NIC read every result from the accelerators');
      t.equal(a.bounceBytes, 0);
    } else {
      t.equal(nic.bytesFromRam, a.payloadBytes);
      t.equal(a.bounceBytes, 2 * a.payloadBytes, 'each result written to RAM and read back once');
    }
  });
}

t.test('four accelerators over two NICs: acc i streams through nic i mod 2', async (t) => {
  const sc = scenario(4, 2);
  const r = await runScenario(sc, { mode: 'p2p' });
  t.same(r.verdicts.map((v) => `${v.provider}->${v.client}`), ['acc0->nic0', 'acc2->nic0', 'acc1->nic1', 'acc3->nic1']);
  t.same(r.accounting.checks.filter((c) => !c.ok), []);
  for (const n of ['nic0', 'nic1']) t.ok(r.accounting.devices.find((d) => d.device === n)!.bytesFromPeer >= 2 * 3 * 128 * 1024, `${n}: two accelerators' results`);
});

t.test('more NICs than streams is refused, naming the key', async (t) => {
  t.throws(() => scenario(2, 3), /workload\.nics: .*at most one NIC per accelerator stream/);
});
