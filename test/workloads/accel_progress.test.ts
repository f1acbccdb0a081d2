// accel-progress (RFC workload 2, use case [B]) in both modes: the NIC never accepts a
// torn record, progress is monotonic, the final checksum matches the CPU reference;
// p2p uses no system RAM for the progress record, bounce copies every update through
// RAM; a corrupted computation is caught.
import t from 'tap';
import { loadScenarioFile } from '../../src/scenario/load.js';
import { runScenario } from '../../src/scenario/run.js';
import { assertChecks } from '../../src/trace/summary.js';
import { VerifyError } from '../../src/errors.js';
import type { Scenario } from '../../src/scenario/schema.js';
import { ProgressRecord } from '../../src/shm/progress_record.js';
import { MonitorSample } from '../../src/devices/nic_abi.js';
import { SummaryRuns } from '../fixtures/summary_width.js';

// Long enough that the monitor polls the record more than once while the
// accelerator computes: 300 iterations (~5 ms since COMPUTE seeds and steps
// in one pass) sometimes ended between two polls in CI, and 1200 once (1 sample, full suite on
// 2 cores, 2026-11-28) since the accelerator's kernels run in WebAssembly.
const ITERATIONS = 4800;
const UPDATES = ITERATIONS / 2; // publishEvery: 2

async function small(mutate: (s: Scenario) => void = () => undefined): Promise<Scenario> {
  const s = await loadScenarioFile('scenarios/accel-progress.yaml');
  Object.assign(s.workload!, { bufferBytes: 64 * 1024, iterations: ITERATIONS, publishEvery: 2, pollUs: 10 });
  mutate(s);
  return s;
}

const summaries = new SummaryRuns('scenarios/accel-progress.yaml');

const dev = (r: Awaited<ReturnType<typeof runScenario>>, name: string) => r.accounting.devices.find((d) => d.device === name)!;

t.test('p2p: the NIC reads the record peer to peer; no RAM is used for progress', async (t) => {
  const r = summaries.keep(await runScenario(await small(), { mode: 'p2p' }));
  const a = r.accounting;
  t.equal(r.mode, 'p2p');
  t.same(a.checks.filter((c) => !c.ok), [], 'every check ok');
  t.match(a.checks.map((c) => c.name), ['the monitor never accepted a torn record', 'observed progress is monotonic', 'final checksum matches the CPU reference']);
  const samples = a.extra['samples (monitoring packets)'] as number;
  t.ok(samples >= 2, `the monitor saw progress (${samples} samples)`);
  t.equal(a.payloadBytes, samples * MonitorSample.kBytes, 'payload = the monitoring packet stream');
  t.equal(a.bounceBytes, 0, 'p2p moves no bounce bytes');
  t.equal(a.ramBytes, dev(r, 'nic0').bytesToRam, 'the only RAM traffic is the sample log');
  t.equal(dev(r, 'acc0').bytesToRam + dev(r, 'acc0').bytesFromRam, 0, 'the accelerator never touches RAM');
  t.ok(a.p2pBytes >= samples * ProgressRecord.kBytes, 'every poll read the record through the BAR');
  t.equal(a.extra.monitorRamBytes, 0);
  t.equal(a.invalidations.sent, 0);
  t.equal(a.hostInterventions, 2, 'one MONITOR and one COMPUTE');
  t.ok(typeof a.extra.slowdownPct === 'number');
  t.ok(a.modeledSeconds > 0);
});

t.test('bounce: every update is copied to RAM and read back from there', async (t) => {
  const r = summaries.keep(await runScenario(await small(), { mode: 'bounce' }));
  const a = r.accounting;
  t.same(a.checks.filter((c) => !c.ok), [], 'every check ok');
  const acc = dev(r, 'acc0');
  const nic = dev(r, 'nic0');
  t.equal(acc.bytesToRam, UPDATES * ProgressRecord.kBytes + UPDATES * 4, `${UPDATES} updates, each seq + body + seq (20 bytes)`);
  t.equal(a.bounceBytes, acc.bytesToRam + nic.bytesFromRam, 'bounce = the accelerator\'s copies + the NIC\'s reads of them');
  t.ok(nic.bytesFromRam >= (a.extra['samples (monitoring packets)'] as number) * ProgressRecord.kBytes);
  t.equal(a.p2pBytes, 0);
  t.ok((a.extra.monitorRamBytes as number) > 4096, 'a page of RAM plus the progress traffic');
});

t.test('a corrupted computation is caught by the CPU reference', async (t) => {
  const r = await runScenario(await small((s) => Object.assign(s.devices[0].props, { 'x-corrupt-iteration': 100 })), { mode: 'p2p' });
  const byName = new Map(r.accounting.checks.map((c) => [c.name, c]));
  t.equal(byName.get('final checksum matches the CPU reference')!.ok, false);
  t.match(byName.get('final checksum matches the CPU reference')!.detail, /COMPUTE returned 0x[0-9a-f]+, reference 0x[0-9a-f]+/);
  t.equal(byName.get('the monitor never accepted a torn record')!.ok, false, 'samples after iteration 100 are not pairs of the reference');
  t.throws(() => assertChecks(r), VerifyError);
});

t.test('both human summaries and the --compare table fit 100 columns', async (t) => summaries.check(t));
