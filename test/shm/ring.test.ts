// NVMe-like rings: empty, full (n - 1 entries), wrap-around, phase bit, head feedback.
import t from 'tap';
import { DeviceCtl, DeviceRegs } from '../../src/shm/device_ctl.js';
import { CQE_WORDS, CqConsumer, CqProducer, SQE_WORDS, SqConsumer, SqProducer, CqEntry } from '../../src/shm/ring.js';

function pair(entries: number) {
  const regs = new Int32Array(new SharedArrayBuffer(DeviceRegs.kBytes));
  const ctl = new Int32Array(new SharedArrayBuffer(DeviceCtl.kBytes));
  const sqMem = new Int32Array(new SharedArrayBuffer(entries * SQE_WORDS * 4));
  const cqMem = new Int32Array(new SharedArrayBuffer(entries * CQE_WORDS * 4));
  const db = { regs, ctl, qid: 1 };
  return {
    ctl,
    regs,
    cqMem,
    sqp: new SqProducer(sqMem, entries, db),
    sqc: new SqConsumer(sqMem, entries, regs, 1),
    cqp: new CqProducer(cqMem, entries, regs, 1),
    cqc: new CqConsumer(cqMem, entries, db),
  };
}

const cmd = (i: number) => ({ opcode: 7, src: 0x1_0000_0000 + i, dst: i * 4096, len: 3 * i, args: [i, -i] });

t.test('an empty ring has nothing available and no completion', async (t) => {
  const q = pair(4);
  t.equal(q.sqc.available(), 0);
  t.equal(q.cqc.poll(), null);
  t.notOk(q.sqp.full);
});

t.test('a ring of n entries holds n - 1, then refuses without writing', async (t) => {
  const q = pair(4);
  for (let i = 0; i < 3; i++) t.ok(q.sqp.submit({ ...cmd(i), cid: i }));
  t.ok(q.sqp.full);
  t.notOk(q.sqp.submit({ ...cmd(9), cid: 9 }), 'full ring refuses');
  t.equal(q.sqc.available(), 3);
  t.equal(Atomics.load(q.ctl, DeviceCtl.wake), 3, 'each doorbell woke the device');
});

t.test('entries, phase and SQ head survive many wraps', async (t) => {
  const q = pair(4);
  let next = 0;
  let done = 0;
  for (let round = 0; round < 10; round++) {
    while (!q.sqp.full) t.ok(q.sqp.submit({ ...cmd(next), cid: next++ & 0xffff }));
    while (q.sqc.available() > 0) {
      const c = q.sqc.peek();
      t.same(c, { ...cmd(c.cid), cid: c.cid, args: [c.cid, -c.cid, 0, 0, 0, 0, 0, 0] });
      q.sqc.pop();
      t.ok(q.cqp.post({ cid: c.cid, status: 0, result: c.cid * 2, sqHead: q.sqc.headIndex }, 1));
    }
    for (let c = q.cqc.poll(); c; c = q.cqc.poll()) {
      t.equal(c.cid, done, 'completions arrive in order');
      t.equal(c.result, done * 2);
      q.sqp.retire(c.sqHead);
      done++;
    }
    t.equal(q.sqp.inFlight, 0, 'head feedback freed the ring');
  }
  t.equal(done, 30);
});

t.test('the phase bit flips on every wrap of the CQ', async (t) => {
  const q = pair(3);
  const phases: number[] = [];
  for (let i = 0; i < 6; i++) {
    t.ok(q.cqp.post({ cid: i, status: 0, result: 0, sqHead: 0 }, 0));
    const slot = i % 3;
    phases.push((q.cqMem[slot * CQE_WORDS + CqEntry.status] >>> 16) & 1);
    t.equal(q.cqc.poll()?.cid, i);
  }
  t.same(phases, [1, 1, 1, 0, 0, 0]);
});

t.test('a full CQ refuses until the consumer rings its head doorbell', async (t) => {
  const q = pair(3);
  t.ok(q.cqp.post({ cid: 1, status: 0, result: 0, sqHead: 0 }, 0));
  t.ok(q.cqp.post({ cid: 2, status: 0, result: 0, sqHead: 0 }, 0));
  t.ok(q.cqp.full);
  t.notOk(q.cqp.post({ cid: 3, status: 0, result: 0, sqHead: 0 }, 0));
  t.equal(q.cqc.poll()?.cid, 1);
  t.notOk(q.cqp.full, 'CQ head doorbell freed a slot');
  t.ok(q.cqp.post({ cid: 3, status: 4, result: 0, sqHead: 0 }, 0));
  t.equal(q.cqc.poll()?.cid, 2);
  t.match(q.cqc.poll(), { cid: 3, status: 4 });
});

t.test('rings refuse silly sizes', async (t) => {
  t.throws(() => pair(1), /at least 2 entries/);
});

t.test('a reap wakes the device only while it waits for CQ room (cqWait)', async (t) => {
  const q = pair(4);
  for (let i = 0; i < 2; i++) t.ok(q.cqp.post({ cid: i, status: 0, result: 0, sqHead: 0 }, 1));
  const w0 = Atomics.load(q.ctl, DeviceCtl.wake);
  t.ok(q.cqc.poll(), 'a completion');
  t.equal(Atomics.load(q.ctl, DeviceCtl.wake), w0, 'not waiting for room: no wake');
  Atomics.store(q.ctl, DeviceCtl.cqWait, 1);
  t.ok(q.cqc.poll(), 'another completion');
  t.equal(Atomics.load(q.ctl, DeviceCtl.wake), w0 + 1, 'waiting for room: woken');
  t.equal(Atomics.load(q.regs, DeviceRegs.cqHead + 1), 2, 'the head was stored either way');
});
