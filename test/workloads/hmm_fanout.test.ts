// hmm-peer with `importers: 8` (scenarios/hmm-peer-fanout.yaml): eight NICs read one
// migrated buffer at peer addresses; the CPU touch migrates half back and one invalidation
// fans out to all eight, each refaults; every NIC's checksums checked on its own. A NIC
// that ignores invalidations reads stale peer memory: the run fails and names that NIC.
import t from 'tap';
import { loadScenarioFile } from '../../src/scenario/load.js';
import { runScenario } from '../../src/scenario/run.js';
import type { Scenario } from '../../src/scenario/schema.js';
import { PAGE_SIZE } from '../../src/shm/constants.js';
import { SummaryRuns } from '../fixtures/summary_width.js';

async function small(mutate: (s: Scenario) => void = () => undefined): Promise<Scenario> {
  const s = await loadScenarioFile('scenarios/hmm-peer-fanout.yaml');
  Object.assign(s.workload!, { pages: 64, stagePages: 4 });
  mutate(s);
  return s;
}

const summaries = new SummaryRuns('scenarios/hmm-peer-fanout.yaml');
const NICS = Array.from({ length: 8 }, (_, i) => `nic${i}`);

t.test('p2p: eight importers of one export, each invalidated and refaulted', async (t) => {
  const r = summaries.keep(await runScenario(await small(), { mode: 'p2p' }));
  const a = r.accounting;
  t.same(a.checks.filter((c) => !c.ok), [], 'every check ok');
  t.same(r.verdicts.map((v) => `${v.provider}->${v.client}:${v.map}`), NICS.map((n) => `acc0->${n}:bus-addr`), 'every NIC may reach acc0 at bus addresses');
  t.match(a.checks[0].detail, /^8 of 8 importers pass \(0-7\)/);
  for (const n of NICS) {
    const d = a.devices.find((x) => x.device === n)!;
    t.equal(d.bytesFromPeer, 64 * PAGE_SIZE + 32 * PAGE_SIZE, `${n}: first SEND all peer, second half peer`);
    t.equal(d.bytesFromRam, 32 * PAGE_SIZE, `${n}: second SEND's touched half from RAM`);
  }
  t.equal(a.refaults, 8 * 32, 'every NIC refaulted exactly the migrated-back pages');
  t.equal(a.payloadBytes, 8 * 64 * PAGE_SIZE);
  t.equal(a.bounceBytes, 0);
  t.ok(a.invalidations.sent >= 8 && a.invalidations.acked === a.invalidations.sent, `${a.invalidations.sent} batches, all acked`);
  // The run's fabric records the links its flows were priced on (observedFabric in src/scenario/run.ts).
  t.ok(r.links.length > 0 && r.links.every((l) => l.bytes > 0), `${r.links.length} links priced`);
});

t.test('bounce: the result reaches all eight NICs through RAM', async (t) => {
  const r = summaries.keep(await runScenario(await small(), { mode: 'bounce' }));
  const a = r.accounting;
  t.same(a.checks.filter((c) => !c.ok), [], 'every check ok');
  t.equal(a.p2pBytes, 0);
  t.equal(a.bounceBytes, 64 * PAGE_SIZE * (1 + 8), "acc0's result written to RAM once, read by each NIC");
});

// The rogue NIC keeps its stale peer translation: its second SEND reads a BAR slot that
// no longer maps acc0's page and the device fails; the error names it, and only it.
t.test('a NIC that ignores invalidations fails the run, named', async (t) => {
  const s = await small((s) => (s.devices.find((d) => d.name === 'nic3')!['x-ignore-invalidations'] = true));
  const e = await runScenario(s, { mode: 'p2p' }).then(
    () => null,
    (x: unknown) => x,
  );
  t.ok(e instanceof Error, 'the run fails');
  t.match((e as Error).message, /^device nic3 /, 'naming nic3');
  t.notMatch((e as Error).message, /nic[0-24-7]\b/, 'and no other NIC');
});

t.test('both human summaries and the --compare table fit 100 columns', async (t) => summaries.check(t));
