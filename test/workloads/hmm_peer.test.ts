// hmm-peer (the RFC's HMM device-memory path) in both modes: anonymous memory migrated
// to the accelerator is read by the NIC at peer addresses; CPU touches migrate half back
// and the NIC refaults to RAM; data checked after each step; bounce stages the
// accelerator's result in RAM (2x the payload); a corrupted transform is caught.
import t from 'tap';
import { loadScenarioFile } from '../../src/scenario/load.js';
import { runScenario, type RunTracer } from '../../src/scenario/run.js';
import { stageTimes } from '../../src/workloads/accounting.js';
import type { Machine } from '../../src/devices/machine.js';
import { assertChecks } from '../../src/trace/summary.js';
import { VerifyError } from '../../src/errors.js';
import type { Scenario } from '../../src/scenario/schema.js';
import { PAGE_SIZE } from '../../src/shm/constants.js';
import { SummaryRuns } from '../fixtures/summary_width.js';

const summaries = new SummaryRuns('scenarios/hmm-peer.yaml');

async function small(mutate: (s: Scenario) => void = () => undefined): Promise<Scenario> {
  const s = await loadScenarioFile('scenarios/hmm-peer.yaml');
  Object.assign(s.workload!, { pages: 64, stagePages: 4 });
  mutate(s);
  return s;
}

t.test('p2p: peer addresses first, RAM addresses for the half the CPU took back', async (t) => {
  const r = summaries.keep(await runScenario(await small(), { mode: 'p2p' }));
  const a = r.accounting;
  t.same(a.checks.filter((c) => !c.ok), [], 'every check ok');
  t.equal(a.checks.length, 6, 'three data checks, two path checks, the safety check');
  t.equal(a.extra['migrated to the accelerator'], 64);
  t.equal(a.extra['pages after the CPU touch'], '32 RAM, 32 device-private');
  t.equal(a.payloadBytes, 64 * PAGE_SIZE);
  t.equal(a.bounceBytes, 0, 'p2p moves 0 bounce bytes');
  const nic = a.devices.find((d) => d.device === 'nic0')!;
  t.equal(nic.bytesFromPeer, 64 * PAGE_SIZE + 32 * PAGE_SIZE, 'first SEND all peer, second half peer');
  t.equal(nic.bytesFromRam, 32 * PAGE_SIZE, 'second SEND: the touched half from RAM');
  t.equal(a.refaults, 32, 'the NIC refaulted exactly the migrated-back pages');
  t.ok(a.invalidations.sent > 0 && a.invalidations.acked === a.invalidations.sent);
  t.ok(a.cpuMs !== undefined && a.cpuMs > 0, 'the CPU time of the timed window is reported (run --compare explains the ratio with it)');
});

/**
 * A tracer that records nothing but, as the run ends (detach runs before the machine shuts down), each device's
 * absolute command count: what the device executed in the whole run, warm-up included, read from its own
 * counters rather than from the accounting's baseline.
 */
function commandCounter(): RunTracer & { readonly commands: Record<string, number> } {
  let machine: Machine | null = null;
  const commands: Record<string, number> = {};
  return {
    records: 0,
    commands,
    attach(m) {
      machine = m;
    },
    detach() {
      for (const d of machine!.devices) commands[d.spec.name] = stageTimes(d).commands;
    },
  };
}

// The first pass goes chunk by chunk (the kernel migrates chunk k + 1 while the accelerator transforms chunk k);
// a warm-up on another buffer runs first in each mode. The data must be what one TRANSFORM of the whole buffer
// gives (ACC_ARG_WORD0 numbers the words of each chunk from the buffer's start), and nothing of the warm-up may
// reach the accounting: the devices executed the warm-up's commands (their absolute counts say so), the
// accounting counts the window's only.
for (const mode of ['p2p', 'bounce'] as const) {
  t.test(`${mode} in four chunks: the bytes of one TRANSFORM, the warm-up run but not counted`, async (t) => {
    const trace = commandCounter();
    const r = await runScenario(await small((s) => Object.assign(s.workload!, { chunkPages: 16 })), { mode, trace });
    const a = r.accounting;
    t.same(a.checks.filter((c) => !c.ok), [], 'every check ok (the NICs saw the reference bytes)');
    t.equal(a.hostInterventions, 4 + 2, 'four TRANSFORMs and two SENDs: not the warm-up ones');
    const acc = a.devices.find((d) => d.device === 'acc0')!;
    t.equal(acc.commands, 4);
    const nic = a.devices.find((d) => d.device === 'nic0')!;
    t.equal(nic.bytesFromPeer + nic.bytesFromRam, 2 * 64 * PAGE_SIZE, 'the two SENDs of the buffer, not the warm-up SEND');
    t.equal(a.extra['migrated to the accelerator'], mode === 'p2p' ? 64 : 0);
    t.same(trace.commands, { acc0: 4 + 4, nic0: 2 + 1 }, "the devices ran the warm-up's four TRANSFORMs (64 pages in chunks of 16) and its SEND too");
  });
}

t.test('warmUp: false runs no warm-up and counts the same', async (t) => {
  const trace = commandCounter();
  const r = await runScenario(await small((s) => Object.assign(s.workload!, { warmUp: false, chunkPages: 16 })), { mode: 'p2p', trace });
  const a = r.accounting;
  t.same(a.checks.filter((c) => !c.ok), [], 'every check ok');
  t.equal(a.hostInterventions, 4 + 2);
  t.same(trace.commands, { acc0: 4, nic0: 2 }, 'the devices ran the window\'s commands only');
});

t.test('bounce: no migration; the result reaches the NIC through RAM', async (t) => {
  const r = summaries.keep(await runScenario(await small(), { mode: 'bounce' }));
  const a = r.accounting;
  t.same(a.checks.filter((c) => !c.ok), [], 'every check ok');
  t.equal(a.extra['migrated to the accelerator'], 0);
  t.equal(a.bounceBytes, 2 * a.payloadBytes, 'bounce moves 2x the payload');
  t.equal(a.p2pBytes, 0);
  t.equal(a.refaults, 0);
});

t.test('a corrupted transform is caught by every data check', async (t) => {
  const r = await runScenario(await small((s) => Object.assign(s.devices[0].props, { 'x-corrupt-iteration': 1, 'x-corrupt-word': 2000 })), { mode: 'p2p' });
  const bad = r.accounting.checks.filter((c) => !c.ok).map((c) => c.name);
  t.same(bad, ['first SEND matches the CPU reference', 'SEND after the CPU touch matches the CPU reference', 'process memory equals the reference']);
  t.match(r.accounting.checks[2].detail, /^word 2000 is 0x[0-9a-f]+, reference 0x[0-9a-f]+$/);
  t.throws(() => assertChecks(r), VerifyError);
});

t.test('both human summaries and the --compare table fit 100 columns', async (t) => summaries.check(t));
