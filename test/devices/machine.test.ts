// Device workers under the kernel: bad DMA addresses, crashes, exits and hangs are
// contained, named and never hang the run; limits are refused up front.
import t from 'tap';
import { oneCommand } from '../fixtures/host_completion.js';
import { DeviceError, LimitError } from '../../src/errors.js';
import { Machine, type DeviceSpec } from '../../src/devices/machine.js';
import { checkLimits, deviceLimit, WORKER_BYTES } from '../../src/devices/limits.js';
import { HostQueue } from '../../src/drivers/host_queue.js';
import { Kernel } from '../../src/kernel/kernel.js';
import { CqStatus } from '../../src/shm/ring.js';
import { PAGE_SIZE } from '../../src/shm/constants.js';
import { DeviceCtl } from '../../src/shm/device_ctl.js';
import { until } from '../fixtures/until.js';

const MiB = 1024 * 1024;

function faulty(name: string, fault: string, when = 'command'): DeviceSpec {
  return { name, kind: 'x-faulty', memBytes: 0, barBytes: 0, props: { fault, when } };
}

async function machine(t: { teardown(fn: () => unknown): void }, devices: DeviceSpec[], timeoutMs = 2000): Promise<Machine> {
  const m = await Machine.create({ ramBytes: 4 * MiB, devices, timeoutMs });
  t.teardown(() => m.shutdown());
  return m;
}

t.test('a DMA to an unmapped bus address is a device error naming device and address', async (t) => {
  const m = await machine(t, [{ name: 'cam0', kind: 'camera', memBytes: 256 * 1024, barBytes: 0, props: {} }]);
  const c = await oneCommand(m, 'cam0', { opcode: 1, src: 0, dst: 8 * MiB, len: 8192, args: [0, 1, 64] }, { start: true });
  t.equal(c.status, CqStatus.DataTransferError);
  const log = await m.device('cam0').handle.call('errors');
  t.equal(log[c.result].message, 'cam0: DMA write to 0x800000 aborted: bus address 0x800000 decodes to no region');
  t.equal(m.failed, null, 'the device is still alive');
});

t.test('behind an IOMMU, a raw bus address is blocked; the address the kernel mapped works', async (t) => {
  const m = await machine(t, [{ name: 'cam0', kind: 'camera', memBytes: 256 * 1024, barBytes: 0, props: {} }]);
  const kernel = Kernel.boot(m, { iommu: ['cam0'] });
  const cam = m.device('cam0');
  t.same(await cam.handle.cmd({ op: 'iommu-attach', domain: kernel.domain('cam0')!.sab }), { errno: 0 });
  const buf = m.ram.allocContig(2).start * PAGE_SIZE;
  const raw = await oneCommand(m, 'cam0', { opcode: 1, src: 0, dst: buf, len: 8192, args: [0, 1, 64] }, { start: true });
  t.equal(raw.status, CqStatus.DataTransferError);
  const log = await cam.handle.call('errors');
  t.match(log[raw.result].message, /^cam0: DMA write to 0x[0-9a-f]+ aborted: IOMMU fault: device cam0, IOVA 0x[0-9a-f]+, write access/);
  const q = await HostQueue.create(m, cam, 1, 4);
  const seen = m.irqSeen();
  q.submit({ opcode: 1, src: 0, dst: kernel.dmaMap('cam0', buf, 8192, true), len: 8192, args: [0, 1, 64] }, 'mapped');
  let done = q.reap();
  while (done.length === 0) {
    await m.waitHostIrq(seen, () => [{ dev: cam, outstanding: q.outstanding }]);
    done = q.reap();
  }
  t.equal(done[0].c.status, CqStatus.Success, 'dma_map gave the camera an IOVA it may write');
  t.ok(m.shm.ram.subarray(buf, buf + 8192).some((b) => b !== 0), 'the frame landed in RAM');
});

t.test('a worker that throws is reported by name and the run stops', async (t) => {
  const m = await machine(t, [faulty('bad0', 'throw')]);
  await t.rejects(oneCommand(m, 'bad0', { opcode: 1, src: 0, dst: PAGE_SIZE, len: 16, args: [] }, { start: true }), {
    name: 'DeviceError',
    device: 'bad0',
    what: 'crashed',
    message: /device bad0 crashed: bad0: injected fault \(x-faulty, fault: throw\)/,
  });
});

t.test('a worker that exits is reported by name', async (t) => {
  const m = await machine(t, [faulty('bad1', 'exit')]);
  await t.rejects(oneCommand(m, 'bad1', { opcode: 1, src: 0, dst: PAGE_SIZE, len: 16, args: [] }, { start: true }), { name: 'DeviceError', device: 'bad1', what: 'exited', message: 'device bad1 exited: worker exited with code 3' });
});

t.test('a worker that hangs is timed out by name and terminated', async (t) => {
  const m = await machine(t, [faulty('bad2', 'hang'), { name: 'cam0', kind: 'camera', memBytes: 256 * 1024, barBytes: 0, props: {} }], 300);
  const t0 = Date.now();
  await t.rejects(oneCommand(m, 'bad2', { opcode: 1, src: 0, dst: PAGE_SIZE, len: 16, args: [] }, { start: true }), {
    device: 'bad2',
    what: 'timeout',
    message: /device bad2 timeout: 1 command\(s\) not completed within 300 ms/,
  });
  await m.shutdown();
  t.ok(Date.now() - t0 < 3000, 'timeout and teardown are bounded');
  await t.rejects(m.device('bad2').handle.call('errors'), { name: 'DeviceError', what: 'timeout' }, 'later calls fail at once with the same error');
});

/** Every device's answer to 'errors' while the kernel's thread is busy for `busyMs` right after asking (a starved kernel on a loaded host). */
function askWhileBusy(m: Machine, busyMs: number): Promise<unknown> {
  return new Promise((resolve) =>
    // From a check-phase callback: the next turn runs the expired timers before reading the answers.
    setImmediate(() => {
      const asked = m.callAll('errors').then(() => null, (e: unknown) => e);
      const t0 = Date.now();
      while (Date.now() - t0 < busyMs);
      resolve(asked);
    }),
  );
}

/** Resolves once the hang-at-start device `name` is spinning in its first pass (its loop began, no call pending). */
function hung(m: Machine, name: string): Promise<void> {
  return until(`${name} to begin its first pass`, () => Atomics.load(m.device(name).shm.ctl, DeviceCtl.heartbeat) > 0);
}

t.test('a kernel thread late past the deadline does not blame a device whose answer was waiting', async (t) => {
  const cam = (name: string): DeviceSpec => ({ name, kind: 'camera', memBytes: 256 * 1024, barBytes: 0, props: {} });
  const m = await machine(t, [cam('cam0'), faulty('bad0', 'hang', 'start'), cam('cam1')], 300);
  await m.start();
  await hung(m, 'bad0');
  // 2 s busy against a 300 ms deadline: cam0 and cam1 answer long before the kernel looks.
  const e = await askWhileBusy(m, 2000);
  t.match(e, { name: 'DeviceError', device: 'bad0', what: 'timeout', message: /no answer to 'errors' within 300 ms/ }, 'the device that hangs is named, alone');
  t.equal(m.device('cam0').handle.failed, null, 'cam0 answered in time: not failed');
  t.equal(m.device('cam1').handle.failed, null, 'cam1 answered in time: not failed');
});

t.test('when several devices do not answer a call to all, every one is named', async (t) => {
  const m = await machine(t, [{ name: 'cam0', kind: 'camera', memBytes: 256 * 1024, barBytes: 0, props: {} }, faulty('bad0', 'hang', 'start'), faulty('bad1', 'hang', 'start')], 300);
  await m.start();
  await hung(m, 'bad0');
  await hung(m, 'bad1');
  const e = await m.callAll('errors').then(() => null, (e: unknown) => e);
  t.match(e, { name: 'DeviceError', device: 'bad0, bad1', what: 'timeout', message: /no answer to 'errors' within 300 ms from 2 devices: bad0 \(heartbeat \d+\), bad1 \(heartbeat \d+\)/ });
  t.equal(m.device('cam0').handle.failed, null, 'cam0 answered');
});

t.test('a worker that throws while starting fails the machine', async (t) => {
  const m = await machine(t, [faulty('bad3', 'throw', 'start')]);
  // The crash may come before or after start() is answered: either way the machine fails.
  const started = m.start().catch(() => undefined);
  await t.rejects(m.failure, { name: 'DeviceError', device: 'bad3', what: 'crashed' });
  await started;
});

t.test('an invalidation sent to a dead device fails at once with its error, not after the ack deadline', async (t) => {
  const m = await machine(t, [faulty('bad4', 'exit', 'start')]);
  const started = m.start().catch(() => undefined);
  await t.rejects(m.failure, { name: 'DeviceError', device: 'bad4' });
  await started;
  const kernel = Kernel.boot(m, { ackTimeoutMs: 5000 });
  const t0 = Date.now();
  await t.rejects(kernel.invalidator('bad4').invalidate([{ start: 0, end: PAGE_SIZE }]), { name: 'DeviceError', device: 'bad4', what: 'exited' });
  t.ok(Date.now() - t0 < 1000, 'no wait for the 5 s ack deadline');
});

t.test('limits are refused up front with the numbers', async (t) => {
  t.throws(() => checkLimits({ ramBytes: 512 * MiB, devices: [] }, 256 * MiB), new LimitError('host memory (RAM + device memory + worker overhead)', 512, 256, 'MiB'));
  // The device limit follows from memory: 1 GiB left after 64 MiB of RAM holds 80 workers of 12 MiB.
  t.equal(deviceLimit(64 * MiB, 1024 * MiB), Math.floor(960 * MiB / WORKER_BYTES));
  t.equal(deviceLimit(0, 24 * 1024 * MiB) >= 256, true, 'a 24 GiB host holds at least 256 device workers');
  const many = (n: number) => Array.from({ length: n }, (_, i) => ({ name: `d${i}`, memBytes: MiB }));
  t.doesNotThrow(() => checkLimits({ ramBytes: 64 * MiB, devices: many(80) }, 1104 * MiB));
  t.throws(() => checkLimits({ ramBytes: 64 * MiB, devices: many(81) }, 1104 * MiB), {
    message: 'scenario asks for 81 devices of device workers (12 MiB each, in 959 MiB left after RAM and device memory), this machine can give 79 devices',
  });
  await t.rejects(Machine.create({ ramBytes: 64 * 1024 * MiB, devices: [], timeoutMs: 1000 }), LimitError, 'nothing is spawned for an impossible machine');
});

t.test('DeviceError is what a caller can switch on', async (t) => {
  const e = new DeviceError('x', 'timeout', 'y');
  t.equal(e.message, 'device x timeout: y');
});
