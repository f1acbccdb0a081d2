// The lazy ack of a device parked on its page-request reply (handshake:
// workers/runtime/device_tlb.ts, kernel side src/kernel/invalidate_broadcast.ts
// post):
// - a device asleep on a request the kernel has not answered is not waited
//   for: the munmap of a buffer it holds translations for completes while
//   the device is still asleep (its ack word has not moved), counted in
//   stats.priParkedAcks; on waking it serves the post before its next
//   access (its ack catches up, a read of the freed buffer fails), and the
//   safety checker sees nothing;
// - the checker catches a broken handshake: a device that says it is
//   parked (priParked written for it) while it keeps DMAing through its old
//   translations (invLagMs) makes the kernel free pages it still writes,
//   reused at once: StaleGeneration violations. The same device without the false claim is
//   waited for: none.
import t, { type Test } from 'tap';
import { Machine, type DeviceSpec } from '../../src/devices/machine.js';
import { Kernel } from '../../src/kernel/kernel.js';
import { PROT_READ, PROT_WRITE, type Mm } from '../../src/kernel/mm.js';
import { ImporterBinding } from '../../src/drivers/importer_binding.js';
import { DeviceCtl } from '../../src/shm/device_ctl.js';
import { pattern } from '../fixtures/kernel_machine.js';
import { holdReplies } from '../fixtures/hold_replies.js';

const MiB = 1024 * 1024;
const RW = PROT_READ | PROT_WRITE;
const nic = (name: string): DeviceSpec => ({ name, kind: 'nic', memBytes: 2 * MiB, barBytes: 0, props: {} });
const tick = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Rig {
  machine: Machine;
  kernel: Kernel;
  mm: Mm;
  nic0: ImporterBinding;
  ctl: Int32Array;
}

async function rig(t: Test): Promise<Rig> {
  const machine = await Machine.create({ ramBytes: 16 * MiB, devices: [nic('nic0')], timeoutMs: 5000, runTokens: 'off' });
  t.teardown(() => machine.shutdown());
  await machine.start();
  const kernel = Kernel.boot(machine, { check: true, ackTimeoutMs: 5000 });
  const mm = kernel.createMm();
  const nic0 = await ImporterBinding.bind(kernel, 'nic0', mm);
  t.teardown(() => nic0.close());
  return { machine, kernel, mm, nic0, ctl: machine.device('nic0').shm.ctl };
}

async function until(what: () => boolean, ms = 3000): Promise<boolean> {
  const t0 = performance.now();
  while (!what() && performance.now() - t0 < ms) await tick(1);
  return what();
}

t.test('a device asleep on its page request is not waited for, and serves the post before its next access', async (t) => {
  const { machine, kernel, mm, nic0, ctl } = await rig(t);
  const inv = kernel.invalidator('nic0');
  const dev = machine.device('nic0').handle;
  for (let round = 0; round < 3; round++) {
    const lenA = 256 * 1024;
    const a = await mm.mmap({ length: lenA, prot: RW });
    await mm.write(a, pattern(lenA, round));
    t.equal((await dev.cmd({ op: 'va-stream', va: a, len: lenA, cmdBytes: 64 * 1024, write: false, passes: 1 })).errno, 0, `round ${round}: the device holds translations of buffer A`);
    const b = await mm.mmap({ length: 64 * 1024, prot: RW });
    await mm.write(b, pattern(64 * 1024, 50 + round));
    const release = holdReplies(nic0);
    const s = dev.cmd({ op: 'va-stream', va: b, len: 64 * 1024, cmdBytes: 64 * 1024, write: false, passes: 1 });
    t.ok(await until(() => Atomics.load(ctl, DeviceCtl.priParked) !== 0), `round ${round}: the device parks on its request for B`);
    const before = { pri: inv.stats.priParkedAcks, waited: inv.stats.ackUs.length, ack: Atomics.load(ctl, DeviceCtl.invAck) };
    await mm.munmap(a, lenA);
    t.equal(inv.stats.priParkedAcks - before.pri, 1, `round ${round}: the munmap's post was counted acked (parked)`);
    t.equal(inv.stats.ackUs.length, before.waited, `round ${round}: main waited for no ack`);
    t.equal(Atomics.load(ctl, DeviceCtl.invAck), before.ack, `round ${round}: the munmap completed while the device was still asleep (no ack yet)`);
    t.not(Atomics.load(ctl, DeviceCtl.priParked), 0, `round ${round}: still parked`);
    release();
    t.equal((await s).errno, 0, `round ${round}: the stream over B goes on once answered`);
    t.equal(Atomics.load(ctl, DeviceCtl.priParked), 0, `round ${round}: awake`);
    t.equal(Atomics.load(ctl, DeviceCtl.invAck), Atomics.load(ctl, DeviceCtl.invSeq), `round ${round}: on waking it served the post`);
    const r = await dev.cmd({ op: 'va-stream', va: a, len: lenA, cmdBytes: 64 * 1024, write: false, passes: 1 });
    t.not(r.errno, 0, `round ${round}: a read of the freed buffer A fails (its translations were dropped)`);
    await mm.munmap(b, 64 * 1024);
  }
  t.equal(nic0.violations().count, 0, 'the safety checker saw no access through a translation after its ack');
  t.equal(inv.stats.timedOut, 0, 'no ack timed out');
});

t.test('the safety checker catches a device that claims to be parked while it DMAs', async (t) => {
  const { machine, kernel, mm, nic0, ctl } = await rig(t);
  const dev = machine.device('nic0').handle;
  t.teardown(() => {
    Atomics.store(ctl, DeviceCtl.invLagMs, 0);
    Atomics.store(ctl, DeviceCtl.priParked, 0);
  });
  const len = 256 * 1024;
  const counts: number[] = [];
  for (const lie of [false, true]) {
    const va = await mm.mmap({ length: len, prot: RW });
    await mm.write(va, pattern(len, lie ? 1 : 0));
    // A slow but legal device: it keeps writing through its old translations for 30 ms after a post.
    Atomics.store(ctl, DeviceCtl.invLagMs, 30);
    const polls = Atomics.load(ctl, DeviceCtl.invPolls);
    const s = dev.cmd({ op: 'va-stream', va, len, cmdBytes: 64 * 1024, write: true, passes: 100000 });
    t.ok(await until(() => Atomics.load(ctl, DeviceCtl.invPolls) - polls > 200), 'the device streams');
    const v0 = nic0.violations().count;
    if (lie) Atomics.store(ctl, DeviceCtl.priParked, 1); // the broken handshake: "parked", but DMAing
    const p0 = kernel.invalidator('nic0').stats.priParkedAcks;
    await mm.munmap(va, len);
    // Reuse the freed pages at once (a new generation each), while a lying device still writes through its old entries.
    const reuse = await mm.mmap({ length: 2 * len, prot: RW });
    await mm.write(reuse, pattern(2 * len, 9));
    await s;
    await mm.munmap(reuse, 2 * len);
    Atomics.store(ctl, DeviceCtl.priParked, 0);
    Atomics.store(ctl, DeviceCtl.invLagMs, 0);
    t.equal(kernel.invalidator('nic0').stats.priParkedAcks - p0, lie ? 1 : 0, lie ? 'the false claim was honoured' : 'no claim: waited for');
    counts.push(nic0.violations().count - v0);
  }
  t.equal(counts[0], 0, 'waited for: no violation');
  t.ok(counts[1] > 0, `honoured while it DMAs: the checker reports ${counts[1]} violation(s)`);
  t.ok(
    nic0.violations().records.some((r) => r.kind === 'stale-generation' || r.kind === 'remapped'),
    `recorded as stale accesses (${JSON.stringify(nic0.violations().records[0] ?? null)})`,
  );
});
