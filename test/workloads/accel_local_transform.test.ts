// TRANSFORM_VA over the accelerator's own device-private pages works on them
// where they are (workers/runtime/local_view.ts): no bytes copied for them,
// RAM pages of the same range still go by DMA, and a CPU taking pages back
// (migrate_to_ram) while the transform runs leaves every page transformed
// exactly once, with no safety violation.
import t from 'tap';
import { Machine } from '../../src/devices/machine.js';
import { Kernel } from '../../src/kernel/kernel.js';
import { HostQueue } from '../../src/drivers/host_queue.js';
import { ImporterBinding } from '../../src/drivers/importer_binding.js';
import { PROT_READ, PROT_WRITE } from '../../src/kernel/mm.js';
import { migrateToDevice } from '../../src/kernel/migrate.js';
import { PAGE_SIZE } from '../../src/shm/constants.js';
import { DeviceStats } from '../../src/shm/device_ctl.js';
import { ACC_HOST_QID, ACC_OP_TRANSFORM_VA } from '../../src/devices/accelerator_abi.js';
import { accelInitReference, accelTransformReference } from '../../src/workloads/reference/accel.js';
import { CommandRunner } from '../../src/workloads/command_runner.js';
import { MiB } from '../fixtures/kernel_machine.js';

async function rig(t: { teardown(fn: () => unknown): void }) {
  const machine = await Machine.create({ ramBytes: 32 * MiB, devices: [{ name: 'acc0', kind: 'accelerator', memBytes: 8 * MiB, barBytes: 0, props: {} }], timeoutMs: 5000 });
  t.teardown(() => machine.shutdown());
  const acc = machine.device('acc0');
  const q = await HostQueue.create(machine, acc, ACC_HOST_QID, 8);
  await machine.start();
  const kernel = Kernel.boot(machine, { check: true });
  const mm = kernel.createMm();
  const bind = await ImporterBinding.bind(kernel, 'acc0', mm);
  t.teardown(() => bind.close());
  const stage = acc.mem!.allocContig(1).start;
  return { kernel, mm, acc, q, bind, stage, runner: new CommandRunner(machine) };
}

/** A process buffer of `pages` pages holding the reference input. */
async function buffer(mm: Awaited<ReturnType<typeof rig>>['mm'], pages: number, seed: number): Promise<{ va: number; ref: Int32Array }> {
  const va = await mm.mmap({ length: pages * PAGE_SIZE, prot: PROT_READ | PROT_WRITE });
  const ref = new Int32Array((pages * PAGE_SIZE) / 4);
  accelInitReference(ref, seed);
  await mm.write(va, new Uint8Array(ref.buffer));
  return { va, ref };
}

t.test('own private pages in place, RAM pages by DMA, one result', async (t) => {
  const { kernel, mm, acc, q, bind, stage, runner } = await rig(t);
  const pages = 64;
  const { va, ref } = await buffer(mm, pages, 3);
  const half = (pages / 2) * PAGE_SIZE;
  t.equal(await migrateToDevice(mm, va + half, va + pages * PAGE_SIZE, kernel.devmem('acc0')), pages / 2, 'the second half is the accelerator\'s');
  const s = acc.shm.stats;
  const before = { local: s[DeviceStats.bytesLocal], fromRam: s[DeviceStats.bytesFromRam], toRam: s[DeviceStats.bytesToRam] };
  await runner.run(q, { opcode: ACC_OP_TRANSFORM_VA, src: va, dst: 0, len: pages * PAGE_SIZE, args: [stage, 9, 1] });
  accelTransformReference(ref, 0, 9);
  t.same(new Int32Array((await mm.read(va, pages * PAGE_SIZE)).buffer), ref, 'equals the CPU reference');
  t.equal(s[DeviceStats.bytesFromRam] - before.fromRam, half, 'the RAM half read by DMA');
  t.equal(s[DeviceStats.bytesToRam] - before.toRam, half, 'and written back by DMA');
  t.equal(s[DeviceStats.bytesLocal] - before.local, 0, 'the private half transformed where it is: nothing copied');
  t.equal(bind.violations().count, 0);
});

t.test('the CPU takes pages back while the transform runs: each page transformed once, no violation', async (t) => {
  const { kernel, mm, q, bind, stage, runner } = await rig(t);
  const pages = 1024;
  const seed = 5;
  const { va, ref } = await buffer(mm, pages, 7);
  t.equal(await migrateToDevice(mm, va, va + pages * PAGE_SIZE, kernel.devmem('acc0')), pages);
  const stampOf = (i: number) => Int32Array.of(0x5eed0000 + i, ~i);
  const touched: number[] = [];
  const run = runner.run(q, { opcode: ACC_OP_TRANSFORM_VA, src: va, dst: 0, len: pages * PAGE_SIZE, args: [stage, seed, 1] });
  // From the last page backwards, every 8th page: ahead of the device for a while, behind it later.
  for (let i = pages - 1; i >= 0; i -= 8) {
    await mm.write(va + i * PAGE_SIZE, new Uint8Array(stampOf(i).buffer));
    touched.push(i);
  }
  await run;
  const got = new Int32Array((await mm.read(va, pages * PAGE_SIZE)).buffer);
  const transformed = ref.slice();
  accelTransformReference(transformed, 0, seed);
  const W = PAGE_SIZE / 4;
  let bad = -1;
  let before = 0;
  for (let i = 0; i < pages && bad < 0; i++) {
    const page = got.subarray(i * W, (i + 1) * W);
    // Stamped after the device transformed it, or before (the device then transformed the stamp too, from RAM).
    const after = transformed.slice(i * W, (i + 1) * W);
    const beforeIn = ref.slice(i * W, (i + 1) * W);
    if (touched.includes(i)) {
      after.set(stampOf(i));
      beforeIn.set(stampOf(i));
    }
    accelTransformReference(beforeIn, i * W, seed);
    const okAfter = page.every((w, k) => w === after[k]);
    const okBefore = page.every((w, k) => w === beforeIn[k]);
    if (okBefore && !okAfter) before++;
    if (!okAfter && !okBefore) bad = i;
  }
  t.equal(bad, -1, 'every page is the transform of its contents, stamped before or after, exactly once');
  t.comment(`${touched.length} pages taken back during the transform, ${before} of them before the device reached them`);
  t.equal(bind.violations().count, 0, 'no access after an ack');
});
