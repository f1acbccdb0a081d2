// RFC workload (1), a NIC drives an NVMe queue: data checked against a shadow copy in
// both modes, the accounting of each mode, refusal and fallback on a topology without
// P2P, a corrupting NVMe caught by the shadow check, and the NVMe's export policy.
import t from 'tap';
import { loadScenarioFile } from '../../src/scenario/load.js';
import { runScenario } from '../../src/scenario/run.js';
import { assertChecks } from '../../src/trace/summary.js';
import { P2pRefusedError, VerifyError } from '../../src/errors.js';
import type { Scenario } from '../../src/scenario/schema.js';
import { Machine } from '../../src/devices/machine.js';
import { Kernel } from '../../src/kernel/kernel.js';
import { HostQueue } from '../../src/drivers/host_queue.js';
import { ImporterBinding } from '../../src/drivers/importer_binding.js';
import { NvmeDriver } from '../../src/drivers/nvme_driver.js';
import { NIC_HOST_QID, NIC_OP_SEND } from '../../src/devices/nic_abi.js';
import { CqStatus } from '../../src/shm/ring.js';
import { KiB, MiB } from '../fixtures/kernel_machine.js';
import { SummaryRuns } from '../fixtures/summary_width.js';

const IOS = 300;
const summaries = new SummaryRuns('scenarios/nic-nvme-queue.yaml');

async function small(file = 'scenarios/nic-nvme-queue.yaml', mutate: (s: Scenario) => void = () => undefined): Promise<Scenario> {
  const s = await loadScenarioFile(file);
  Object.assign(s.workload!, { ios: IOS, blocks: 32, queueDepth: 8, queueEntries: 16 });
  mutate(s);
  return s;
}

t.test('p2p: every READ matches the shadow copy, no RAM, no kernel per IO', async (t) => {
  const r = summaries.keep(await runScenario(await small(), { mode: 'p2p' }));
  const a = r.accounting;
  t.equal(r.mode, 'p2p');
  t.same(a.checks.map((c) => c.ok), [true, true, true], a.checks.map((c) => c.detail).join('; '));
  t.match(a.checks[2], { name: /^safety/, detail: '1 importer(s) checked' }, 'the NIC, bound to the process, used no stale translation');
  t.match(a.checks[0].detail, /READs verified \(\d+ of previously written blocks\)/);
  t.equal(a.payloadBytes, IOS * 4096);
  t.equal(a.ramBytes, 0, 'nothing of the data path touches system RAM');
  t.equal(a.bounceBytes, 0);
  t.ok(a.p2pBytes >= a.payloadBytes, 'data + queue traffic went NIC <-> NVMe');
  t.equal(a.hostInterventions, 0, 'no kernel command or page request per IO after setup');
  t.equal(a.extra['kernel interventions per IO'], 0);
  t.equal(a.extra['page requests during the stream'], 0);
  const nic = a.devices.find((d) => d.device === 'nic0')!;
  t.equal(nic.faultWaitMs, 0, "nic0's fault wait in the timed window: none (NVME_ATTACH's prefault is setup)");
  t.equal(nic.mapMs, 0, 'nor the kernel mapping for nic0');
  t.equal(a.extra['NVMe commands from the peer / the host'], `${IOS} / 0`);
  t.ok(a.modeledSeconds > 0);
});

// The NIC writes its SQEs and reads its CQEs in batches (NIC_QE_BATCH), each
// stopping at the ring's end: rings whose size is not a multiple of the
// depth wrap mid-batch, and a 2-entry ring wraps on every request.
t.test('p2p: batched SQE writes and CQE reads across the ring wrap, every READ still matches', async (t) => {
  for (const [queueEntries, queueDepth] of [[11, 10], [2, 1]]) {
    const r = await runScenario(await small(undefined, (s) => Object.assign(s.workload!, { queueEntries, queueDepth })), { mode: 'p2p' });
    t.same(r.accounting.checks.map((c) => c.ok), [true, true, true], `${queueEntries} entries, depth ${queueDepth}: ${r.accounting.checks.map((c) => c.detail).join('; ')}`);
    t.equal(r.accounting.extra['NVMe commands from the peer / the host'], `${IOS} / 0`);
  }
});

t.test('bounce: the kernel relays every IO through RAM, same data checks', async (t) => {
  const r = summaries.keep(await runScenario(await small(), { mode: 'bounce' }));
  const a = r.accounting;
  t.equal(r.mode, 'bounce');
  t.same(a.checks.map((c) => c.ok), [true, true], a.checks.map((c) => c.detail).join('; '));
  t.equal(a.bounceBytes, 2 * a.payloadBytes, 'each IO is staged in RAM once: two copies of its data');
  t.equal(a.ramBytes, a.bounceBytes);
  t.equal(a.p2pBytes, 0);
  t.equal(a.hostInterventions, 3 * IOS, 'RECV, NVMe command, XMIT per IO');
  t.equal(a.extra['NVMe commands from the peer / the host'], `0 / ${IOS}`);
});

t.test('a topology without P2P: p2p refused up front, fallback runs bounce', async (t) => {
  const s = await small('test/fixtures/scenarios/nic-nvme-two-rc.yaml');
  const e = await runScenario(s).catch((x: unknown) => x);
  t.ok(e instanceof P2pRefusedError, 'refused before any device starts');
  t.match((e as Error).message, /p2p mode refused for nic-nvme-queue[\s\S]*nvme0 -> nic0: p2pdma:/);
  Object.assign(s.workload!, { fallback: 'bounce' });
  const r = await runScenario(s);
  t.equal(r.requestedMode, 'p2p');
  t.equal(r.mode, 'bounce');
  t.match(r.fallback, /nvme0 -> nic0: p2pdma:/);
  t.same(r.accounting.checks.map((c) => c.ok), [true, true]);
  t.equal(r.accounting.bounceBytes, 2 * r.accounting.payloadBytes);
});

t.test('an NVMe that flips one byte of a READ is caught by the shadow check, in both modes', async (t) => {
  for (const mode of ['p2p', 'bounce'] as const) {
    const s = await small(undefined, (s) => Object.assign(s.devices[1].props, { 'x-corrupt-read': 5, 'x-corrupt-offset': 100 }));
    const r = await runScenario(s, { mode });
    const c = r.accounting.checks[0];
    t.equal(c.ok, false, `${mode}: check fails`);
    t.match(c.detail, /^1 of 300 request\(s\) wrong:\n {2}request \d+ \(READ lba \d+\): the client got data with checksum 0x[0-9a-f]{8}, the shadow copy has 0x[0-9a-f]{8}$/, mode);
    t.throws(() => assertChecks(r), VerifyError);
  }
});

t.test('the NVMe exports its CMB queue to the NIC only: another importer gets EPERM', async (t) => {
  const nic = (name: string) => ({ name, kind: 'nic', memBytes: 256 * KiB, barBytes: 0, props: {} });
  const machine = await Machine.create({ ramBytes: 16 * MiB, devices: [nic('nic0'), nic('nic1'), { name: 'nvme0', kind: 'nvme', memBytes: 512 * KiB, barBytes: 64 * KiB, props: {} }], timeoutMs: 5000 });
  t.teardown(() => machine.shutdown());
  const q1 = await HostQueue.create(machine, machine.device('nic1'), NIC_HOST_QID, 4);
  await machine.start();
  const kernel = Kernel.boot(machine, { check: true });
  const mm = kernel.createMm();
  const drv = await NvmeDriver.probe(kernel, 'nvme0', 16);
  const b1 = await ImporterBinding.bind(kernel, 'nic1', mm);
  t.teardown(() => b1.close());
  const cmb = await drv.createCmbQueue(mm, { entries: 8, dataBytes: 4 * 4096, policy: { importers: ['nic0'], readOnly: false, requireIommu: false, cpuMappable: false }, msiAddr: 0 });
  // nic1 tries to read the NVMe's SQ through the VMA.
  q1.submit({ opcode: NIC_OP_SEND, src: cmb.va, dst: 0, len: 64, args: [] }, null);
  let got = q1.reap();
  while (got.length === 0) {
    const seen = machine.irqSeen();
    got = q1.reap();
    if (got.length === 0) await machine.waitHostIrq(seen, () => [{ dev: machine.device('nic1'), outstanding: q1.outstanding }]);
  }
  t.equal(got[0].c.status, CqStatus.DataTransferError);
  const log = await machine.device('nic1').handle.call('errors');
  t.match(log.find((e) => e.seq === got[0].c.result)?.message, /nic1: SEND of .*EPERM/);
  t.match(kernel.log.join('\n'), /bar-exporter of nvme0 refuses nic1: not an allowed importer \(policy importers: \[nic0\]\)/);
  t.equal(drv.cmbExporter!.refusals, 1);
  t.equal(drv.cmbExporter!.mapCalls, 1);
});

t.test('both human summaries and the --compare table fit 100 columns', async (t) => summaries.check(t));
