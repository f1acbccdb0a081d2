// accel-nic-stream with `evict: revoke`: the driver revokes result buffers
// dma-buf/VFIO style while the NIC streams them — the NIC is invalidated, its
// refault is refused with ENODEV, the driver restores access and sends the
// result again; the stream stays byte-exact and the buffers never move.
import t from 'tap';
import { loadScenarioFile } from '../../src/scenario/load.js';
import { runScenario } from '../../src/scenario/run.js';

const KiB = 1024;

t.test('p2p, evict: revoke — refused SENDs are sent again after the restore, byte-exact', async (t) => {
  const s = await loadScenarioFile('scenarios/accel-nic-stream.yaml');
  Object.assign(s.workload!, { resultBytes: 512 * KiB, results: 6, revokes: 3, evict: 'revoke' });
  const r = await runScenario(s, { mode: 'p2p' });
  const a = r.accounting;
  t.same(a.checks.filter((c) => !c.ok), [], 'every check ok (the stream is checksum-equal to the CPU reference)');
  t.equal(a.extra.revokesFired, 3, 'every planned revocation happened');
  const refused = a.extra.sendsRefused as number;
  t.ok(refused <= 3, `${refused} SEND(s) refused with ENODEV and sent again`);
  t.equal(a.p2pBytes >= a.payloadBytes, true, 'every result crossed peer to peer (a refused SEND is read again)');
  t.equal(a.ramBytes, 0, 'nothing through system RAM');
  t.match(a.checks.find((c) => c.name === 'invalidations survived')?.detail, /revocations done \(\d+ SENDs refused with ENODEV/);
  // Only moves of pages the NIC holds reach it (interval notifiers of its own
  // mappings): a buffer moved before its SEND faulted it in sends nothing.
  t.ok(a.invalidations.sent >= 1 && a.invalidations.acked === a.invalidations.sent, 'the NIC acked every invalidation');
});
