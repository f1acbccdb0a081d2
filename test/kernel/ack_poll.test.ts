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
//   by sleeping, never counted as a polled ack, and never times out;
// - a device that acks while main sleeps on the ack waits until main is
//   awake, yielding its core after a short spin, for a bounded time
//   (InvalidationPort.yieldToSleeper), and main clears the word it waits
//   on once awake.
import t, { type Test } from 'tap';
import { Machine, type DeviceSpec } from '../../src/devices/machine.js';
import { Kernel } from '../../src/kernel/kernel.js';
import { PROT_READ, PROT_WRITE, vpnOf, type Mm } from '../../src/kernel/mm.js';
import { ImporterBinding } from '../../src/drivers/importer_binding.js';
import { PAGE_SIZE, POISON_BYTE } from '../../src/shm/constants.js';
import { DeviceCtl, DeviceStats } from '../../src/shm/device_ctl.js';
import { pattern } from '../fixtures/kernel_machine.js';
import { InvalidationPort } from '../../workers/runtime/invalidation.js';
import { Worker } from 'node:worker_threads';
import { until } from '../fixtures/until.js';

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

t.test('a device that acks while main sleeps on the ack waits for main, yielding its core, a bounded time', async (t) => {
  // The device side alone (InvalidationPort on this thread): nobody clears invSleeper, as when main cannot run.
  const ctl = new Int32Array(new SharedArrayBuffer(DeviceCtl.kBytes));
  const stats = new Float64Array(new SharedArrayBuffer(DeviceStats.kFieldCount * 8));
  const port = new InvalidationPort(ctl, stats);
  // Main is awake (invSleeper 0) or sleeps on another seq: no wait.
  for (const [seq, sleeper] of [[1, 0], [2, 1]]) {
    Atomics.store(ctl, DeviceCtl.invSeq, seq);
    Atomics.store(ctl, DeviceCtl.invSleeper, sleeper);
    t.ok(port.check(), `seq ${seq} acked`);
    t.equal(stats[DeviceStats.ackYields], 0, `invSleeper ${sleeper}: no yield`);
  }
  Atomics.store(ctl, DeviceCtl.invSeq, 3);
  Atomics.store(ctl, DeviceCtl.invSleeper, 3); // main sleeps on seq 3
  const t0 = performance.now();
  t.ok(port.check(), 'seq 3 acked');
  const took = performance.now() - t0;
  t.equal(Atomics.load(ctl, DeviceCtl.invAck), 3, 'the ack is stored before the device waits');
  t.ok(took >= 1 && took < 500, `the device waited for main (${took.toFixed(2)} ms: 1 ms at most, then it went on)`);
  t.equal(stats[DeviceStats.ackYields], 1, 'after its spin it yielded its core');
  // The loop's own pass (check(false)) acks without waiting: an idle device sleeps next anyway.
  Atomics.store(ctl, DeviceCtl.invSeq, 4);
  Atomics.store(ctl, DeviceCtl.invSleeper, 4);
  t.ok(port.check(false), 'seq 4 acked');
  t.equal(stats[DeviceStats.ackYields], 1, 'no yield from the loop pass');
});

/**
 * Watches a device's control block from a thread of its own while main sleeps in Atomics.wait:
 * counts the samples in which invSleeper named the seq posted (main stored it before sleeping).
 */
async function watchSleeper(ctl: Int32Array): Promise<{ seen(): number; stop(): Promise<number> }> {
  const flag = new Int32Array(new SharedArrayBuffer(12));
  const w = new Worker(
    `const { workerData: { ctl, flag, sleeper, seq } } = require('node:worker_threads');
     Atomics.store(flag, 2, 1);
     while (Atomics.load(flag, 0) === 0) {
       const s = Atomics.load(ctl, sleeper);
       if (s !== 0 && s === Atomics.load(ctl, seq)) Atomics.add(flag, 1, 1);
     }`,
    { eval: true, workerData: { ctl, flag, sleeper: DeviceCtl.invSleeper, seq: DeviceCtl.invSeq } },
  );
  await until('the watcher thread to start', () => Atomics.load(flag, 2) !== 0, 10000, 5);
  return {
    seen: () => Atomics.load(flag, 1),
    async stop() {
      Atomics.store(flag, 0, 1);
      await w.terminate();
      return Atomics.load(flag, 1);
    },
  };
}

t.test('main clears invSleeper once awake, and a device yields only after acks main slept for', async (t) => {
  const { machine, kernel, mm } = await rig(t);
  const inv = kernel.invalidator('nic0');
  const { ctl, stats } = machine.device('nic0').shm;
  const va = await mm.mmap({ length: 4 * PAGE_SIZE, prot: RW });
  const slept = () => inv.stats.acked - inv.stats.polledAcks;
  // An idle device: main sleeps on each ack (1 ms at most, tens of µs here), naming its seq in
  // invSleeper meanwhile, seen from another thread. Revokes until it is seen (2000 at most): on a
  // loaded machine the watcher may get no core during the first windows (0 in 3 once, beside two
  // busy processes).
  const watch = await watchSleeper(ctl);
  let revokes = 0;
  while (revokes < 2000 && watch.seen() === 0) {
    await mm.revokeRange(va, va + PAGE_SIZE, null);
    revokes++;
  }
  const seen = await watch.stop();
  t.ok(seen > 0, `main named the seq it slept on in invSleeper (${seen} samples in ${revokes} revokes)`);
  t.equal(Atomics.load(ctl, DeviceCtl.invSleeper), 0, 'and cleared it once awake');
  const s0 = slept();
  for (let i = 0; i < 5; i++) {
    await mm.revokeRange(va, va + PAGE_SIZE, null); // an idle device: main sleeps for its ack
    t.equal(Atomics.load(ctl, DeviceCtl.invSleeper), 0, `revoke ${i}: main cleared invSleeper once awake`);
  }
  t.equal(slept() - s0, 5, 'main slept for every ack of the idle device');
  const s = machine.device('nic0').handle.cmd({ op: 'va-stream', va, len: 4 * PAGE_SIZE, cmdBytes: PAGE_SIZE, write: true, passes: 20000 });
  await tick(5);
  for (let i = 0; i < 20; i++) await mm.revokeRange(va + 3 * PAGE_SIZE, va + 4 * PAGE_SIZE, null);
  await s;
  t.equal(Atomics.load(ctl, DeviceCtl.invSleeper), 0, 'cleared after the streaming revokes too');
  t.ok(stats[DeviceStats.ackYields] <= slept(), `yields only after acks main slept for (${stats[DeviceStats.ackYields]} <= ${slept()})`);
  t.equal(inv.stats.timedOut, 0, 'no ack timed out');
});

t.test('run tokens: a parked device is not waited for, and serves what was posted before its next chunk', async (t) => {
  const names = ['nic0', 'nic1', 'nic2'];
  const machine = await Machine.create({ ramBytes: 16 * MiB, devices: names.map(nic), timeoutMs: 5000, runTokens: 1 });
  t.teardown(() => machine.shutdown());
  await machine.start();
  const kernel = Kernel.boot(machine, { check: true, ackTimeoutMs: 5000 });
  const mm = kernel.createMm();
  const binds: ImporterBinding[] = [];
  for (const n of names) binds.push(await ImporterBinding.bind(kernel, n, mm));
  t.teardown(async () => {
    for (const b of binds) await b.close();
  });
  for (const [k, n] of names.entries()) machine.device(n).shm.mem!.set(pattern(512 * 1024, 200 + k), 0); // what the devices write: never poison
  const len = 512 * 1024;
  let parked = 0;
  for (let round = 0; round < 6; round++) {
    const bufs: number[] = [];
    for (const _ of names) {
      const va = await mm.mmap({ length: len, prot: RW });
      await mm.write(va, pattern(len, round)); // in RAM before the streams start
      bufs.push(va);
    }
    const pfns = bufs.flatMap((va) => Array.from({ length: len / PAGE_SIZE }, (_, i) => (mm.pt.get(vpnOf(va) + i) as { pfn?: number } | undefined)?.pfn ?? -1));
    // Each device writes its own buffer, in 64 KiB commands: one holds the token, two wait for it (parked).
    const streams = names.map((n, k) => machine.device(n).handle.cmd({ op: 'va-stream', va: bufs[k], len, cmdBytes: 64 * 1024, write: true, passes: 100000 }));
    const waits = machine.runTokens!.stats.waits;
    const t0 = performance.now();
    while (machine.runTokens!.stats.waits - waits < 4 && performance.now() - t0 < 3000) await tick(2);
    // Unmap the buffer of a device that is parked now: it must not write there once admitted.
    const parkedNow = (): number => names.findIndex((n) => machine.runTokens!.parked(machine.device(n).shm.index));
    let k = parkedNow();
    for (const t1 = performance.now(); k < 0 && performance.now() - t1 < 3000; k = parkedNow()) await tick(0);
    t.ok(k >= 0, `round ${round}: a device is parked`);
    const p0 = kernel.invalidator(names[k]).stats.parkedAcks;
    await mm.munmap(bufs[k], len);
    parked += kernel.invalidator(names[k]).stats.parkedAcks - p0;
    const rk = await streams[k];
    t.equal(rk.errno, 'EIO', `round ${round}: ${names[k]}'s stream ends at its unmapped buffer`);
    for (let i = 0; i < names.length; i++) if (i !== k) await mm.munmap(bufs[i], len);
    await Promise.all(streams);
    await tick(5);
    const ram = kernel.ramBytes;
    const mine = pfns.slice(k * (len / PAGE_SIZE), (k + 1) * (len / PAGE_SIZE));
    t.notOk(pfns.includes(-1), `round ${round}: every page was in RAM before the munmap`);
    const bad = mine.filter((p) => !ram.subarray(p * PAGE_SIZE, (p + 1) * PAGE_SIZE).every((b) => b === POISON_BYTE));
    t.same(bad, [], `round ${round}: ${names[k]} wrote no page of its buffer after it was freed`);
  }
  t.ok(parked > 0, `invalidations posted to parked devices were not waited for (${parked} of 6 rounds)`);
  t.same(binds.map((b) => b.violations().count), [0, 0, 0], 'the safety checker saw no access through a translation after its ack');
  t.same(names.map((n) => kernel.invalidator(n).stats.timedOut), [0, 0, 0], 'no ack timed out');
});
