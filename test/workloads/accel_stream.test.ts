// accel-nic-stream (RFC workload 3, use case [B]) in both modes: byte-exact stream,
// p2p moves nothing through RAM while the driver moves buffers mid-SEND, bounce moves
// every byte twice; BAR-window eviction during streaming keeps the data exact; a
// corrupted result is caught.
import t from 'tap';
import { loadScenarioFile } from '../../src/scenario/load.js';
import { runScenario } from '../../src/scenario/run.js';
import { assertChecks } from '../../src/trace/summary.js';
import { VerifyError } from '../../src/errors.js';
import type { Scenario } from '../../src/scenario/schema.js';
import { revokePlan } from '../../src/workloads/accel_nic_stream/run.js';
import { WARM_ROUNDS } from '../../src/workloads/accel_nic_stream/warmup.js';
import { SummaryRuns } from '../fixtures/summary_width.js';

const KiB = 1024;
const summaries = new SummaryRuns('scenarios/accel-nic-stream.yaml');

async function small(mutate: (s: Scenario) => void = () => undefined): Promise<Scenario> {
  const s = await loadScenarioFile('scenarios/accel-nic-stream.yaml');
  Object.assign(s.workload!, { resultBytes: 512 * KiB, results: 6, revokes: 3 });
  mutate(s);
  return s;
}

t.test('the revoke plan is seeded: same seed, same results and delays', async (t) => {
  t.same(revokePlan(7, 10, 3), revokePlan(7, 10, 3));
  t.notSame(revokePlan(7, 10, 3), revokePlan(8, 10, 3));
  t.equal(revokePlan(1, 3, 5).length, 2, 'at most one per result, never result 0');
  t.notOk(revokePlan(1, 10, 9).some((p) => p.result === 0));
});

t.test('p2p: byte-exact while the driver moves result buffers mid-SEND; no RAM traffic', async (t) => {
  const r = summaries.keep(await runScenario(await small(), { mode: 'p2p' }));
  const a = r.accounting;
  t.same(a.checks.filter((c) => !c.ok), [], 'every check ok');
  t.equal(a.payloadBytes, 6 * 512 * KiB);
  t.equal(a.bounceBytes, 0, 'p2p moves 0 bounce bytes');
  t.equal(a.ramBytes, 0);
  t.equal(a.p2pBytes, a.payloadBytes, 'the NIC read every byte from accelerator memory');
  t.equal(a.extra.revokesFired, 3, 'every planned move happened');
  // Only moves of pages the NIC holds reach it (interval notifiers of its own
  // mappings): a buffer moved before its SEND faulted it in sends nothing.
  t.ok(a.invalidations.sent >= 1 && a.invalidations.acked === a.invalidations.sent, 'the NIC acked every invalidation');
  t.ok(a.modeledSeconds > 0);
});

t.test('bounce: every result byte crosses system RAM twice', async (t) => {
  const r = summaries.keep(await runScenario(await small(), { mode: 'bounce' }));
  const a = r.accounting;
  t.same(a.checks.filter((c) => !c.ok), [], 'every check ok');
  t.equal(a.bounceBytes, 2 * a.payloadBytes, 'bounce moves 2x the payload');
  t.equal(a.ramBytes, 2 * a.payloadBytes);
  t.equal(a.p2pBytes, 0);
  t.equal(a.invalidations.sent, 0);
  t.equal(a.hostInterventions, 18, 'COMPUTE, COPY_TO_VA and SEND per result');
});

t.test('eviction during streaming: a BAR window smaller than the buffers recycles slots, data stays exact', async (t) => {
  // Two 512 KiB buffers behind a 768 KiB window: each SEND evicts the other buffer's slots.
  const r = await runScenario(await small((s) => (s.devices[0].bar = 768 * KiB)), { mode: 'p2p' });
  const a = r.accounting;
  t.same(a.checks.filter((c) => !c.ok), [], 'every check ok');
  t.ok((a.extra['BAR slots recycled'] as number) > 0, 'slots were recycled');
  t.ok(a.refaults > 0, `the NIC refaulted ${a.refaults} pages`);
  t.ok(a.invalidations.sent > 3);
});

t.test('a corrupted result is caught and named', async (t) => {
  const r = await runScenario(await small((s) => Object.assign(s.devices[0].props, { 'x-corrupt-iteration': 1, 'x-corrupt-word': 1000 })), { mode: 'p2p' });
  const c = r.accounting.checks[0];
  t.equal(c.ok, false);
  t.match(c.detail, /^6 of 6 result\(s\) differ:\n {2}result 0: the NIC sent checksum 0x[0-9a-f]+, reference 0x[0-9a-f]+/);
  t.throws(() => assertChecks(r), VerifyError);
});

t.test('the warm-up runs before the window and is not counted: with or without it, the window counts the same', async (t) => {
  // Commands the warm-up submits (./warmup.ts): per result COMPUTE and SEND (bounce: and COPY_TO_VA);
  // With revokes: 0 the stream never moves a buffer, so neither does the warm-up.
  const warmCommands = { p2p: 2 * WARM_ROUNDS * 2, bounce: 2 * WARM_ROUNDS * 3 };
  for (const mode of ['p2p', 'bounce'] as const) {
    // No planned moves: every count is then fixed by the workload (moves' counts depend on timing).
    // The 768 KiB window (two 512 KiB buffers) recycles BAR slots in the warm-up and in the window.
    const runs = await Promise.all([true, false].map(async (warmUp) => (await runScenario(await small((s) => { Object.assign(s.workload!, { revokes: 0, warmUp }); s.devices[0].bar = 768 * KiB; }), { mode })).accounting));
    const [warm, cold] = runs;
    t.same(warm.checks.filter((c) => !c.ok), [], `${mode}: every check ok with the warm-up`);
    for (const k of ['payloadBytes', 'ramBytes', 'bounceBytes', 'p2pBytes', 'hostInterventions', 'refaults'] as const) t.equal(warm[k], cold[k], `${mode}: ${k} the same`);
    t.same(warm.invalidations.sent, cold.invalidations.sent, `${mode}: invalidation batches the same`);
    t.equal(warm.extra['NIC page requests'], cold.extra['NIC page requests'], `${mode}: the NIC's page requests the same`);
    t.equal(warm.extra['BAR slots recycled'], cold.extra['BAR slots recycled'], `${mode}: BAR slots recycled in the window the same`);
    if (mode === 'p2p') t.ok((warm.extra['BAR slots recycled'] as number) > 0, 'p2p: the window recycled slots');
    t.same(warm.devices.map((d) => d.commands), cold.devices.map((d) => d.commands), `${mode}: each device's commands the same`);
    t.equal(String(warm.extra['warm-up (untimed, before the window)']).match(/^(\d+) commands: .*through two buffers of their own/)?.[1], String(warmCommands[mode]), `${mode}: the warm-up ran its ${warmCommands[mode]} commands`);
    t.match(String(cold.extra['warm-up (untimed, before the window)']), /^none/);
  }
});

t.test('the warm-up needs no more accelerator memory than the stream: one buffer when the stream has one', async (t) => {
  // 1 MiB + 256 KiB holds one 512 KiB result and the copy a move makes of it, not two results and a move.
  const r = await runScenario(await small((s) => { Object.assign(s.workload!, { buffers: 1, revokes: 1 }); s.devices[0].memory = 1280 * KiB; s.devices[0].bar = 1024 * KiB; }), { mode: 'p2p' });
  t.same(r.accounting.checks.filter((c) => !c.ok), [], 'every check ok');
  t.match(String(r.accounting.extra['warm-up (untimed, before the window)']), /^\d+ commands: 16 results of 524288 bytes through one buffer of their own/);
});

t.test('a stream that never moves a buffer gets a warm-up that moves none: memory for its own buffers suffices', async (t) => {
  // Two 512 KiB results in 1 MiB of accelerator memory: a move in the warm-up would need a third (ENOMEM).
  for (const w of [{ revokes: 0 }, { evict: 'revoke' as const }]) {
    const r = await runScenario(await small((s) => { Object.assign(s.workload!, { buffers: 2, ...w }); s.devices[0].memory = 1024 * KiB; s.devices[0].bar = 1024 * KiB; }), { mode: 'p2p' });
    t.same(r.accounting.checks.filter((c) => !c.ok), [], `${JSON.stringify(w)}: every check ok`);
    t.match(String(r.accounting.extra['warm-up (untimed, before the window)']), /^32 commands: 16 results/, `${JSON.stringify(w)}: the warm-up ran, moving nothing`);
  }
});

t.test('both human summaries and the --compare table fit 100 columns', async (t) => summaries.check(t));
