// Main polls a streaming device's ack word before sleeping
// (src/kernel/invalidate_broadcast.ts waitSync/pollAck):
// - an ack is still never seen before the device finished the DMA piece in
//   flight: a device writing a buffer by VA while main munmaps all of it
//   (so some piece is mid-copy over the doomed pages when the invalidation
//   lands) leaves only poison in the freed pages, and the safety checker
//   sees no stale access;
// - main polls only while the device is seen looking for invalidations
//   (its invPolls word moves): a device that sleeps before acking
//   (invDelayMs) or keeps DMAing without acking (invLagMs) is waited for
//   by sleeping, never counted as a polled ack, and never times out.
import t, { type Test } from 'tap';
import { Machine, type DeviceSpec } from '../../src/devices/machine.js';
import { Kernel } from '../../src/kernel/kernel.js';
import { PROT_READ, PROT_WRITE, vpnOf, type Mm } from '../../src/kernel/mm.js';
import { ImporterBinding } from '../../src/drivers/importer_binding.js';
import { PAGE_SIZE, POISON_BYTE } from '../../src/shm/constants.js';
import { DeviceCtl } from '../../src/shm/device_ctl.js';
import { pattern } from '../fixtures/kernel_machine.js';

const MiB = 1024 * 1024;
const RW = PROT_READ | PROT_WRITE;
const nic = (name: string): DeviceSpec => ({ name, kind: 'nic', memBytes: 2 * MiB, barBytes: 0, props: {} });
const tick = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Rig {
  machine: Machine;
  kernel: Kernel;
  mm: Mm;
  nic0: ImporterBinding;
}

async function rig(t: Test): Promise<Rig> {
  const machine = await Machine.create({ ramBytes: 16 * MiB, devices: [nic('nic0')], timeoutMs: 5000, runTokens: 'off' });
  t.teardown(() => machine.shutdown());
  await machine.start();
  const kernel = Kernel.boot(machine, { check: true, ackTimeoutMs: 5000 });
  const mm = kernel.createMm();
  const nic0 = await ImporterBinding.bind(kernel, 'nic0', mm);
  t.teardown(() => nic0.close());
  return { machine, kernel, mm, nic0 };
}

t.test('munmap of a buffer a device is writing: every freed page holds only poison, no stale access', async (t) => {
  const { machine, kernel, mm, nic0 } = await rig(t);
  const inv = kernel.invalidator('nic0');
  const len = MiB;
  for (let round = 0; round < 3; round++) {
    const va = await mm.mmap({ length: len, prot: RW });
    await mm.write(va, pattern(len, round));
    machine.device('nic0').shm.mem!.set(pattern(len, 100 + round), 0);
    const pfns = Array.from({ length: len / PAGE_SIZE }, (_, i) => {
      const pte = mm.pt.get(vpnOf(va) + i);
      if (pte?.kind !== 'ram') throw new Error(`page ${i} is not in RAM`);
      return pte.pfn;
    });
    // Many passes in 64 KiB commands: the stream is mid-copy whenever the munmap lands.
    const s = machine.device('nic0').handle.cmd({ op: 'va-stream', va, len, cmdBytes: 64 * 1024, write: true, passes: 1000 });
    await tick(5 + 5 * round);
    const acks = inv.stats.acked;
    await mm.munmap(va, len);
    const r = await s;
    t.ok(inv.stats.acked > acks, `round ${round}: the munmap was acked by the streaming device`);
    t.equal(r.errno, 'EIO', `round ${round}: the stream ends at the unmapped VA (${(r as { message?: string }).message})`);
    await tick(5);
    const ram = kernel.ramBytes;
    const bad = pfns.filter((p) => !ram.subarray(p * PAGE_SIZE, (p + 1) * PAGE_SIZE).every((b) => b === POISON_BYTE));
    t.same(bad, [], `round ${round}: no device write landed in a page after it was freed`);
  }
  t.equal(nic0.violations().count, 0, 'the safety checker saw no access through a translation after its ack');
  t.equal(inv.stats.timedOut, 0, 'no ack timed out');
  t.ok(inv.stats.polledAcks <= inv.stats.syncAcks && inv.stats.syncAcks <= inv.stats.acked, `polled ${inv.stats.polledAcks} <= sync ${inv.stats.syncAcks} <= acked ${inv.stats.acked}`);
});

t.test('a device that is not looking for invalidations is slept for, not polled', async (t) => {
  const { machine, kernel, mm } = await rig(t);
  const inv = kernel.invalidator('nic0');
  const ctl = machine.device('nic0').shm.ctl;
  const va = await mm.mmap({ length: 4 * PAGE_SIZE, prot: RW });
  t.teardown(() => {
    Atomics.store(ctl, DeviceCtl.invDelayMs, 0);
    Atomics.store(ctl, DeviceCtl.invLagMs, 0);
  });
  for (const [knob, ms] of [
    [DeviceCtl.invDelayMs, 5], // asleep before acking: invPolls stops moving
    [DeviceCtl.invLagMs, 5], // looks (invPolls moves) but does not ack for 5 ms, longer than main ever polls
  ] as const) {
    Atomics.store(ctl, knob, ms);
    const polled = inv.stats.polledAcks;
    const acked = inv.stats.acked;
    const t0 = performance.now();
    for (let i = 0; i < 5; i++) await mm.revokeRange(va, va + PAGE_SIZE, null);
    const took = performance.now() - t0;
    Atomics.store(ctl, knob, 0);
    t.equal(inv.stats.acked - acked, 5, 'every revoke was acked');
    t.equal(inv.stats.polledAcks, polled, 'none while main polled');
    t.ok(took >= 5 * ms * 0.9, `the acks came late, as the device was told (${took.toFixed(1)} ms for 5)`);
  }
  t.equal(inv.stats.timedOut, 0, 'late, within the deadline: no timeout');
});
