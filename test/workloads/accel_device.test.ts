// The accelerator device alone: COMPUTE matches the CPU reference and publishes a
// seqcount progress record in its memory; mirrors it to process memory by VA;
// COPY_TO_VA and TRANSFORM_VA; bad fields are refused by name; the x- knob corrupts.
import t from 'tap';
import { Machine } from '../../src/devices/machine.js';
import { Kernel } from '../../src/kernel/kernel.js';
import { HostQueue } from '../../src/drivers/host_queue.js';
import { ImporterBinding } from '../../src/drivers/importer_binding.js';
import { PROT_READ, PROT_WRITE } from '../../src/kernel/mm.js';
import { PAGE_SIZE } from '../../src/shm/constants.js';
import { ProgressRecord } from '../../src/shm/progress_record.js';
import { ACC_F_INIT, ACC_F_MIRROR_VA, ACC_HOST_QID, ACC_OP_COMPUTE, ACC_OP_COPY_TO_VA, ACC_OP_TRANSFORM_VA, vaArgs } from '../../src/devices/accelerator_abi.js';
import { accelReference, accelTransformReference } from '../../src/workloads/reference/accel.js';
import { CommandRunner, deviceQuery } from '../../src/workloads/command_runner.js';
import { MiB } from '../fixtures/kernel_machine.js';

async function accMachine(t: { teardown(fn: () => unknown): void }, props: Record<string, unknown> = {}) {
  const machine = await Machine.create({ ramBytes: 16 * MiB, devices: [{ name: 'acc0', kind: 'accelerator', memBytes: 1 * MiB, barBytes: 0, props: { 'x-corrupt-word': 0, ...props } }], timeoutMs: 5000 });
  t.teardown(() => machine.shutdown());
  const acc = machine.device('acc0');
  const q = await HostQueue.create(machine, acc, ACC_HOST_QID, 8);
  await machine.start();
  return { machine, acc, q, runner: new CommandRunner(machine) };
}

t.test('COMPUTE matches the CPU reference and leaves a final progress record', async (t) => {
  const { machine, acc, q, runner } = await accMachine(t);
  const buf = acc.mem!.allocContig(4);
  const rec = acc.mem!.allocContig(1);
  const c = await runner.run(q, { opcode: ACC_OP_COMPUTE, src: buf.start * PAGE_SIZE, dst: rec.start * PAGE_SIZE, len: 4 * PAGE_SIZE, args: [50, 7, 3, ACC_F_INIT] });
  const ref = accelReference(PAGE_SIZE, 7, 50);
  t.equal(c.result, ref.checksums[50] | 0);
  const words = new Int32Array(acc.shm.mem!.buffer, acc.shm.mem!.byteOffset + rec.start * PAGE_SIZE, ProgressRecord.kFieldCount);
  t.same([words[ProgressRecord.iteration], words[ProgressRecord.checksum], words[ProgressRecord.done]], [50, ref.checksums[50] | 0, 1]);
  t.equal(words[ProgressRecord.seq], 2 * 17, 'published after iterations 3, 6, ..., 48 and 50: 17 updates, seq even');
  t.same(new Int32Array(acc.shm.mem!.buffer, acc.shm.mem!.byteOffset + buf.start * PAGE_SIZE, PAGE_SIZE), ref.buffer);
  const k = await deviceQuery(machine, acc, { op: 'acc-counters' });
  t.equal(k.publishes, 17);
  t.equal(k.lastIterations, 50);
  t.ok(k.lastComputeUs > 0);
});

t.test('bad fields are refused with a message naming the device', async (t) => {
  const { q, runner } = await accMachine(t);
  await t.rejects(runner.run(q, { opcode: ACC_OP_COMPUTE, src: 2, dst: 0, len: 8, args: [1, 1, 0, 0] }), /acc0: COMPUTE buffer \[2, \+8\) must be 4-aligned/);
  await t.rejects(runner.run(q, { opcode: ACC_OP_COMPUTE, src: 0, dst: 4, len: 64, args: [1, 1, 1, 0] }), /overlaps the buffer/);
  await t.rejects(runner.run(q, { opcode: 9, src: 0, dst: 0, len: 0, args: [] }), /acc0: unknown opcode 9/);
});

t.test('bound to a process: mirrored progress, COPY_TO_VA and TRANSFORM_VA', async (t) => {
  const { machine, acc, q, runner } = await accMachine(t);
  const kernel = Kernel.boot(machine, { check: true });
  const mm = kernel.createMm();
  const bind = await ImporterBinding.bind(kernel, 'acc0', mm);
  t.teardown(() => bind.close());
  const buf = acc.mem!.allocContig(4);
  const rec = acc.mem!.allocContig(1);
  const recVa = await mm.mmap({ length: PAGE_SIZE, prot: PROT_READ | PROT_WRITE });
  await runner.run(q, { opcode: ACC_OP_COMPUTE, src: buf.start * PAGE_SIZE, dst: rec.start * PAGE_SIZE, len: 4 * PAGE_SIZE, args: [10, 3, 1, ACC_F_INIT | ACC_F_MIRROR_VA, ...vaArgs(recVa)] });
  const ref = accelReference(PAGE_SIZE, 3, 10);
  const r = new Int32Array((await mm.read(recVa, ProgressRecord.kBytes)).buffer);
  t.same([r[ProgressRecord.seq], r[ProgressRecord.iteration], r[ProgressRecord.checksum], r[ProgressRecord.done]], [20, 10, ref.checksums[10] | 0, 1], 'the RAM copy is the final record');
  const out = await mm.mmap({ length: 4 * PAGE_SIZE, prot: PROT_READ | PROT_WRITE });
  await runner.run(q, { opcode: ACC_OP_COPY_TO_VA, src: buf.start * PAGE_SIZE, dst: out, len: 4 * PAGE_SIZE, args: [] });
  t.same(new Int32Array((await mm.read(out, 4 * PAGE_SIZE)).buffer), ref.buffer, 'COPY_TO_VA');
  const stage = acc.mem!.allocContig(1);
  await runner.run(q, { opcode: ACC_OP_TRANSFORM_VA, src: out, dst: 0, len: 4 * PAGE_SIZE, args: [stage.start, 5, 1] });
  const want = ref.buffer.slice();
  accelTransformReference(want, 0, 5);
  t.same(new Int32Array((await mm.read(out, 4 * PAGE_SIZE)).buffer), want, 'TRANSFORM through a one-page staging area');
  t.equal(bind.violations().count, 0);
});

t.test('x-corrupt-iteration flips a word: the result differs from the reference', async (t) => {
  const { q, runner, acc } = await accMachine(t, { 'x-corrupt-iteration': 2 });
  const buf = acc.mem!.allocContig(1);
  const c = await runner.run(q, { opcode: ACC_OP_COMPUTE, src: buf.start * PAGE_SIZE, dst: 0, len: PAGE_SIZE, args: [4, 1, 0, ACC_F_INIT] });
  t.not(c.result, accelReference(PAGE_SIZE / 4, 1, 4).checksums[4] | 0);
});
