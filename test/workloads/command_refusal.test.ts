// A command that fails on a bound device (CommandRunner: hmm-peer, accel-progress, accel-nic-stream)
// says the kernel's reason when a page request the kernel refused is why, and only then: another
// failure after a refusal carries no stale kernel line. So does a device query that DMAs by VA (va-stream).
import t from 'tap';
import { BarExporter } from '../../src/drivers/bar_exporter.js';
import { completionError, HostQueue } from '../../src/drivers/host_queue.js';
import type { Device } from '../../src/devices/machine.js';
import { ImporterBinding } from '../../src/drivers/importer_binding.js';
import { NIC_HOST_QID, NIC_OP_PREFETCH, NIC_OP_SEND } from '../../src/devices/nic_abi.js';
import { PAGE_SIZE } from '../../src/shm/constants.js';
import { CommandRunner } from '../../src/workloads/command_runner.js';
import { nicImport } from '../fixtures/nic_import.js';

const hex = (n: number) => `0x${n.toString(16)}`;

t.test("a SEND over a range the exporter refuses names the kernel's reason; a later unrelated failure does not", async (t) => {
  const acc1 = { name: 'acc1', kind: 'accelerator', memBytes: 16 * PAGE_SIZE, barBytes: 16 * PAGE_SIZE, props: {} } as const;
  const { machine, kernel, mm, nic } = await nicImport(t, 64 * PAGE_SIZE, [acc1]);
  const q = await HostQueue.create(machine, nic, NIC_HOST_QID, 4);
  const runner = new CommandRunner(machine, kernel);
  const only = new BarExporter(kernel, 'acc1', { importers: ['acc0'], readOnly: false, requireIommu: false, cpuMappable: false });
  const { va } = await only.mmap(mm, 4);
  const range = `\\[${hex(va)}, ${hex(va + 4 * PAGE_SIZE)}\\)`;
  await t.rejects(
    runner.run(q, { opcode: NIC_OP_SEND, src: va, dst: 0, len: 4 * PAGE_SIZE, args: [] }),
    new RegExp(`^device nic0 reported an error: nic0: SEND of .*: nic0: read of va ${range} failed at va ${hex(va)}: EPERM; kernel: nic0: page request ${range} refused: EPERM: .*refuses nic0: not an allowed importer`),
    "the device's message (range, page, errno), then the kernel's line for that page request",
  );
  const e = await runner.run(q, { opcode: NIC_OP_PREFETCH, src: va, dst: 0, len: 0, args: [] }).then(
    () => null,
    (x: unknown) => x,
  );
  t.match(e, { message: /nic0: PREFETCH of 0 bytes$/ }, 'a bad argument after the refusal: the device says so');
  t.notMatch(String(e), /kernel:/, "and no kernel line: the refusal before it is not this failure's reason");
  await mm.munmap(va, 4 * PAGE_SIZE);
});

t.test("a bind of the device refused (it is bound already) does not drop the bound binding's refusals", async (t) => {
  const acc1 = { name: 'acc1', kind: 'accelerator', memBytes: 16 * PAGE_SIZE, barBytes: 16 * PAGE_SIZE, props: {} } as const;
  const { machine, kernel, mm, nic, bind } = await nicImport(t, 64 * PAGE_SIZE, [acc1]);
  const q = await HostQueue.create(machine, nic, NIC_HOST_QID, 4);
  const only = new BarExporter(kernel, 'acc1', { importers: ['acc0'], readOnly: false, requireIommu: false, cpuMappable: false });
  const { va } = await only.mmap(mm, 4);
  let second: Promise<unknown> | null = null;
  // Once nic0's page request is refused, before its driver reads the failed SEND: a second bind of nic0 is tried.
  bind.onFault = (errno) => {
    if (errno !== 0 && !second) second = ImporterBinding.bind(kernel, 'nic0', mm).then(() => 'bound', (e: Error) => e.message);
  };
  await t.rejects(
    new CommandRunner(machine, kernel).run(q, { opcode: NIC_OP_SEND, src: va, dst: 0, len: 4 * PAGE_SIZE, args: [] }),
    /failed at va 0x[0-9a-f]+: EPERM; kernel: nic0: page request .* refused: EPERM: .*not an allowed importer/,
    "the kernel's line for the bound binding's refusal",
  );
  t.match(await second, /EBUSY: nic0: .*already bound to a process/, 'the second bind was refused');
  bind.onFault = null;
  await mm.munmap(va, 4 * PAGE_SIZE);
});

t.test("a va-stream (deviceQuery, not a queue command) over a range the exporter refuses names the kernel's reason", async (t) => {
  const acc1 = { name: 'acc1', kind: 'accelerator', memBytes: 16 * PAGE_SIZE, barBytes: 16 * PAGE_SIZE, props: {} } as const;
  const { kernel, mm, stream } = await nicImport(t, 64 * PAGE_SIZE, [acc1]);
  const only = new BarExporter(kernel, 'acc1', { importers: ['acc0'], readOnly: false, requireIommu: false, cpuMappable: false });
  const { va } = await only.mmap(mm, 4);
  const range = `\\[${hex(va)}, ${hex(va + 4 * PAGE_SIZE)}\\)`;
  await t.rejects(
    stream({ va, len: 4 * PAGE_SIZE, cmdBytes: 4 * PAGE_SIZE }),
    new RegExp(`^device nic0 reported an error: nic0: read of va ${range} failed at va ${hex(va)}: EPERM; kernel: nic0: page request ${range} refused: EPERM: .*refuses nic0: not an allowed importer`),
  );
  await mm.munmap(va, 4 * PAGE_SIZE);
});

t.test('a failed command whose device error log cannot be read says so, with why (not swallowed)', async (t) => {
  const dev = { spec: { name: 'nic9' }, handle: { call: () => Promise.reject(new Error('device nic9 timeout: no answer to errors')) } } as unknown as Device;
  const e = await completionError(dev, { status: 4, result: 0 }, null);
  t.equal(e.message, 'device nic9 reported an error: completion status 4 (its error log could not be read: device nic9 timeout: no answer to errors)');
});
