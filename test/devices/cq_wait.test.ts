// A device whose CQ is full while its SQ still holds commands publishes
// DeviceCtl.cqWait, and the consumer's next reap wakes it (src/shm/ring.ts,
// workers/runtime/device_queues.ts); with room again it clears the word.
// A host queue never gets there (its SQ producer learns the head from the
// CQEs), so this test retires SQ entries from the CQEs it has not reaped,
// as a producer reading the device's SQ head would.
import t from 'tap';
import { Machine, type DeviceSpec } from '../../src/devices/machine.js';
import { PAGE_SIZE } from '../../src/shm/constants.js';
import { busWordView } from '../../src/shm/bus_map.js';
import { DeviceCtl } from '../../src/shm/device_ctl.js';
import { CQE_WORDS, CqConsumer, CqEntry, queuePairBytes, SqProducer } from '../../src/shm/ring.js';
import { until } from '../fixtures/until.js';

const MiB = 1024 * 1024;
const nic = (name: string): DeviceSpec => ({ name, kind: 'nic', memBytes: 2 * MiB, barBytes: 0, props: {} });

t.test('a device blocked on a full CQ says so (cqWait), and the reap that frees a slot wakes it', async (t) => {
  const machine = await Machine.create({ ramBytes: 16 * MiB, devices: [nic('nic0')], timeoutMs: 5000, runTokens: 'off' });
  t.teardown(() => machine.shutdown());
  const dev = machine.device('nic0');
  const entries = 4;
  const ring = (bytes: number, what: string) => {
    const bus = machine.ram.allocContig(Math.ceil(bytes / PAGE_SIZE)).start * PAGE_SIZE;
    return { bus, view: busWordView(machine.bus, bus, bytes, what) };
  };
  const bytes = queuePairBytes(entries);
  const sq = ring(bytes.sq, 'nic0 SQ0');
  const cq = ring(bytes.cq, 'nic0 CQ0');
  const db = { regs: dev.shm.regs, ctl: dev.shm.ctl, qid: 0 };
  await dev.handle.call('createQueue', { qid: 0, entries, sqBus: sq.bus, cqBus: cq.bus, irq: { kind: 'host' } });
  await machine.start();
  const sqp = new SqProducer(sq.view, entries, db);
  const cqc = new CqConsumer(cq.view, entries, db);
  const ctl = dev.shm.ctl;
  // An opcode the NIC does not know completes at once (InvalidOpcode).
  const cmd = (cid: number) => ({ opcode: 0xee, cid, src: 0, dst: 0, len: 0, args: [] });
  // Phase bit of CQ entry i (1 on the first pass round the ring).
  const phase = (i: number) => (Atomics.load(cq.view, i * CQE_WORDS + CqEntry.status) >>> 16) & 1;
  for (let i = 0; i < entries - 1; i++) t.ok(sqp.submit(cmd(i)));
  await until('the CQ to fill (3 completions, none reaped)', () => phase(entries - 2) === 1, 3000);
  t.equal(Atomics.load(ctl, DeviceCtl.cqWait), 0, 'nothing left in the SQ: not waiting');
  sqp.retire(entries - 1);
  t.ok(sqp.submit(cmd(3)) && sqp.submit(cmd(4)), 'two more commands');
  await until('the device to publish cqWait (commands left, CQ full)', () => Atomics.load(ctl, DeviceCtl.cqWait) === 1, 3000);
  const wake = Atomics.load(ctl, DeviceCtl.wake);
  t.equal(cqc.poll()?.cid, 0, 'the host reaps one');
  t.ok(Atomics.load(ctl, DeviceCtl.wake) > wake, 'that reap woke the device');
  await until('the device to complete the next command into the freed slot', () => phase(3) === 1, 3000);
  const got = [1, 2, 3].map(() => cqc.poll()?.cid);
  t.same(got, [1, 2, 3], 'completions in order');
  let last: number | undefined;
  await until('the last completion, once there is room', () => (last ??= cqc.poll()?.cid) !== undefined, 3000);
  t.equal(last, 4);
  await until('cqWait to clear (room again)', () => Atomics.load(ctl, DeviceCtl.cqWait) === 0, 3000);
});
