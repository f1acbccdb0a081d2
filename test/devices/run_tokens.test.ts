// Cooperative run tokens (src/shm/run_token_layout.ts, workers/runtime/run_token.ts,
// src/devices/run_tokens.ts): FIFO hand-off, invalidations acked while a device waits
// for a token, small transfers without a token, a dead holder reaped, the deadline
// naming the holder, and tokens off.
import t, { type Test } from 'tap';
import { Machine, type DeviceSpec } from '../../src/devices/machine.js';
import { resolveRunTokens, parseRunTokens } from '../../src/devices/run_tokens.js';
import { Kernel } from '../../src/kernel/kernel.js';
import { PROT_READ, PROT_WRITE, type Mm } from '../../src/kernel/mm.js';
import { ImporterBinding } from '../../src/drivers/importer_binding.js';
import type { VaStreamResult } from '../../src/devices/protocol.js';
import { allocRunTokens, giveBackTicket, RUN_TOKEN_FREE_BYTES, RunTokenHdr, RunTokenSlot, RunTokenState, runTokenRingWord, runTokenSlotWord, ticketAdmitted } from '../../src/shm/run_token_layout.js';
import { PAGE_SIZE } from '../../src/shm/constants.js';
import { bytesEq, pattern } from '../fixtures/kernel_machine.js';
import { until } from '../fixtures/until.js';

const MiB = 1024 * 1024;
const nic = (name: string): DeviceSpec => ({ name, kind: 'nic', memBytes: 2 * MiB, barBytes: 0, props: {} });

/** Takes a ticket for device `dev` from the main thread, as its worker would (a stand-in holder). */
function takeTicket(v: Int32Array, dev: number): number {
  const tk = Atomics.add(v, RunTokenHdr.next, 1);
  Atomics.store(v, runTokenSlotWord(dev, RunTokenSlot.ticket), tk);
  Atomics.store(v, runTokenSlotWord(dev, RunTokenSlot.state), RunTokenState.Queued);
  Atomics.store(v, runTokenRingWord(v[RunTokenHdr.devices], tk), dev + 1);
  return tk;
}

t.test('the ticket protocol admits K at a time, in issue order, and wakes the next device', async (t) => {
  const v = new Int32Array(allocRunTokens(5, 2));
  const tickets = [0, 1, 2, 3, 4].map((d) => takeTicket(v, d));
  t.same(tickets.map((x) => ticketAdmitted(v, x)), [true, true, false, false, false], 'two tokens: the first two tickets run');
  const woken: number[] = [];
  t.ok(giveBackTicket(v, 1, (d) => woken.push(d)), 'device 1 gives its token back');
  t.same(woken, [2], 'the release wakes the device whose ticket it admits (FIFO: device 2, not 3 or 4)');
  t.same(tickets.map((x) => ticketAdmitted(v, x)), [true, true, true, false, false]);
  t.notOk(giveBackTicket(v, 1, () => undefined), 'a ticket is given back once (the CAS decides between device and kernel)');
  // Device 3 dies while queued: giving its ticket back pre-pays it, so device 4 is not held behind it.
  t.ok(giveBackTicket(v, 3, (d) => woken.push(d)));
  t.same(woken, [2, 3], 'the pre-paid release admits ticket 3 (its dead owner is woken harmlessly)');
  giveBackTicket(v, 0, (d) => woken.push(d));
  t.same(woken, [2, 3, 4], 'and the next release admits device 4');
  t.ok(ticketAdmitted(v, tickets[4]));
  const holding = [0, 1, 2, 3, 4].filter((d) => Atomics.load(v, runTokenSlotWord(d, RunTokenSlot.state)) === RunTokenState.Queued && ticketAdmitted(v, tickets[d]));
  t.same(holding, [2, 4], 'still at most K = 2 holders');
});

t.test('the setting: auto is on only when devices outnumber cores', async (t) => {
  t.equal(resolveRunTokens('auto', 2, 2), 0);
  t.equal(resolveRunTokens(undefined, 3, 2), 2);
  t.equal(resolveRunTokens('off', 64, 2), 0);
  t.equal(resolveRunTokens(3, 1, 2), 3);
  t.same([parseRunTokens('auto'), parseRunTokens('off'), parseRunTokens('4'), parseRunTokens('x')], ['auto', 'off', 4, null]);
});

interface Rig {
  machine: Machine;
  kernel: Kernel;
  mm: Mm;
  buf: number;
  want: Uint8Array;
}

async function rig(t: Test, devices: DeviceSpec[], runTokens: number | 'off', timeoutMs = 5000, bufBytes = MiB): Promise<Rig> {
  const machine = await Machine.create({ ramBytes: 16 * MiB, devices, timeoutMs, runTokens });
  t.teardown(() => machine.shutdown());
  const kernel = Kernel.boot(machine, {});
  const mm = kernel.createMm();
  const buf = await mm.mmap({ length: bufBytes, prot: PROT_READ | PROT_WRITE });
  const want = pattern(bufBytes, 3);
  await mm.write(buf, want);
  return { machine, kernel, mm, buf, want };
}

function stream(r: Rig, dev: string, len: number, passes = 1): Promise<VaStreamResult> {
  return r.machine.device(dev).handle.cmd({ op: 'va-stream', va: r.buf, len, cmdBytes: 256 * 1024, passes }).then((x) => {
    if (x.errno !== 0) throw new Error(`va-stream on ${dev}: ${(x as { message?: string }).message}`);
    return x as unknown as VaStreamResult;
  });
}

t.test('a device waiting for a run token still acks invalidations, then streams the right bytes', async (t) => {
  const r = await rig(t, [nic('nic0'), nic('idle0')], 1);
  await r.machine.start();
  const b = await ImporterBinding.bind(r.kernel, 'nic0', r.mm);
  t.teardown(() => b.close());
  const v = new Int32Array(r.machine.runTokens!.sab);
  takeTicket(v, 1); // idle0 "holds" the only token
  let settled = false;
  const s = stream(r, 'nic0', MiB).finally(() => (settled = true));
  await until('nic0 to wait for the token', () => r.machine.runTokens!.stats.waits > 0);
  const other = await r.mm.mmap({ length: PAGE_SIZE, prot: PROT_READ | PROT_WRITE });
  const lat: number[] = [];
  for (let i = 0; i < 5; i++) {
    const t0 = performance.now();
    await r.mm.revokeRange(other, other + PAGE_SIZE, null); // broadcast to nic0, which must ack
    lat.push(performance.now() - t0);
  }
  t.equal(settled, false, 'the stream is still waiting for its token');
  t.equal(r.kernel.invalidator('nic0').stats.timedOut, 0, 'every invalidation was acked, none timed out');
  t.ok(Math.max(...lat) < 2000, `acks did not wait for the token (slowest ${Math.max(...lat).toFixed(1)} ms)`);
  t.ok(r.machine.runTokens!.reap(1), 'the stand-in holder gives the token back');
  const res = await s;
  t.equal(res.bytes, MiB);
  bytesEq(t, r.machine.device('nic0').shm.mem!.subarray(0, MiB), r.want, 'nic0 read the process buffer');
  // The counters RunReport.machine reports (tokenWaits, tokenHandoffs): nic0 slept once; the reap admitted it.
  t.same(r.machine.runTokens!.stats, { waits: 1, handoffs: 1 }, 'one acquire slept, one release woke it');
});

t.test('a transfer of at most RUN_TOKEN_FREE_BYTES takes no token; a larger one waits for it', async (t) => {
  const r = await rig(t, [nic('nic0'), nic('idle0')], 1);
  await r.machine.start();
  const b = await ImporterBinding.bind(r.kernel, 'nic0', r.mm);
  t.teardown(() => b.close());
  takeTicket(new Int32Array(r.machine.runTokens!.sab), 1); // idle0 "holds" the only token
  const small = await r.machine.device('nic0').handle.cmd({ op: 'va-stream', va: r.buf, len: 4 * RUN_TOKEN_FREE_BYTES, cmdBytes: RUN_TOKEN_FREE_BYTES });
  t.equal(small.errno, 0, 'commands of RUN_TOKEN_FREE_BYTES (a ring entry, a doorbell are smaller) ran while the token was held elsewhere');
  t.equal(r.machine.runTokens!.stats.waits, 0, 'and never queued for it');
  bytesEq(t, r.machine.device('nic0').shm.mem!.subarray(0, 4 * RUN_TOKEN_FREE_BYTES), r.want.subarray(0, 4 * RUN_TOKEN_FREE_BYTES), 'nic0 read the right bytes');
  let settled = false;
  const big = r.machine.device('nic0').handle.cmd({ op: 'va-stream', va: r.buf, len: 2 * RUN_TOKEN_FREE_BYTES, cmdBytes: 2 * RUN_TOKEN_FREE_BYTES }).finally(() => (settled = true));
  await until('nic0 to wait for the token', () => r.machine.runTokens!.stats.waits > 0);
  t.equal(settled, false, 'a command of twice the limit waits for the token');
  t.ok(r.machine.runTokens!.reap(1), 'the stand-in holder gives the token back');
  t.equal((await big).errno, 0, 'then it runs');
});

t.test('a command over one-page runs (scattered backing) is as large as its length: it waits for the token', async (t) => {
  const r = await rig(t, [nic('nic0'), nic('idle0')], 1);
  await r.machine.start();
  const b = await ImporterBinding.bind(r.kernel, 'nic0', r.mm);
  t.teardown(() => b.close());
  // Two buffers faulted page by page in turn: each one's pages lie every other page in RAM.
  const n = 8;
  const x = await r.mm.mmap({ length: n * PAGE_SIZE, prot: PROT_READ | PROT_WRITE });
  const y = await r.mm.mmap({ length: n * PAGE_SIZE, prot: PROT_READ | PROT_WRITE });
  for (let i = 0; i < n; i++) for (const base of [x, y]) await r.mm.write(base + i * PAGE_SIZE, r.want.subarray(i * PAGE_SIZE, (i + 1) * PAGE_SIZE));
  t.ok(n * PAGE_SIZE > RUN_TOKEN_FREE_BYTES && PAGE_SIZE <= RUN_TOKEN_FREE_BYTES, 'each run is token-free, the command is not');
  takeTicket(new Int32Array(r.machine.runTokens!.sab), 1); // idle0 "holds" the only token
  let settled = false;
  const cmd = r.machine.device('nic0').handle.cmd({ op: 'va-stream', va: x, len: n * PAGE_SIZE, cmdBytes: n * PAGE_SIZE }).finally(() => (settled = true));
  await until('nic0 to wait for the token', () => r.machine.runTokens!.stats.waits > 0);
  t.equal(settled, false, 'the command waits for the token');
  t.ok(r.machine.runTokens!.reap(1), 'the stand-in holder gives the token back');
  t.equal((await cmd).errno, 0, 'then it runs');
  bytesEq(t, r.machine.device('nic0').shm.mem!.subarray(0, n * PAGE_SIZE), r.want.subarray(0, n * PAGE_SIZE), 'nic0 read the right bytes');
});

t.test('streams share one token fairly (FIFO hand-off at chunk boundaries)', async (t) => {
  const names = ['nic0', 'nic1', 'nic2'];
  const r = await rig(t, names.map(nic), 1);
  await r.machine.start();
  for (const n of names) {
    const b = await ImporterBinding.bind(r.kernel, n, r.mm);
    t.teardown(() => b.close());
  }
  // Round robin gives the three streams the same time each, from its own start; a greedy
  // token (the releaser takes it again before a sleeping waiter runs) would take 1/3, 2/3
  // and 3/3 of the time. Each stream's own start and end: a stream the host scheduler
  // starts late (its page requests still going while another already copies) is not
  // contending yet, and measured from the first start that lag alone ended one stream
  // early on a loaded host (27 of 70 ms). One pass each first, for the same reason.
  for (const n of names) await stream(r, n, MiB);
  const res = await Promise.all(names.map((n) => stream(r, n, MiB, 128)));
  const took = res.map((x) => x.t1 - x.t0);
  // 0.45, not more: with two CPU hogs beside the suite a fair run measured 50 / 88 / 77 ms
  // (0.57); greedy gives 0.33, and the hand-off count below catches greedy on its own.
  t.ok(Math.min(...took) >= 0.45 * Math.max(...took), `no stream took much less time than the others (${took.map((x) => x.toFixed(0)).join(', ')} ms each)`);
  t.ok(r.machine.runTokens!.stats.handoffs > 3, `the token went round (${r.machine.runTokens!.stats.handoffs} hand-offs)`);
  for (const n of names) bytesEq(t, r.machine.device(n).shm.mem!.subarray(0, MiB), r.want, `${n} read the process buffer`);
});

t.test('a crashed worker holding a token does not wedge the others', async (t) => {
  const bad: DeviceSpec = { name: 'bad0', kind: 'x-faulty', memBytes: 0, barBytes: 0, props: { fault: 'throw', when: 'start' } };
  const r = await rig(t, [nic('nic0'), bad], 1);
  await r.machine.device('nic0').handle.call('start');
  const b = await ImporterBinding.bind(r.kernel, 'nic0', r.mm);
  t.teardown(() => b.close());
  takeTicket(new Int32Array(r.machine.runTokens!.sab), 1); // bad0 holds the token...
  const s = stream(r, 'nic0', MiB);
  await until('nic0 to wait for the token', () => r.machine.runTokens!.stats.waits > 0);
  await r.machine.device('bad0').handle.call('start').catch(() => undefined); // ...and dies
  await t.rejects(r.machine.failure, /device bad0 crashed/);
  t.equal((await s).bytes, MiB, 'nic0 got the dead device\'s token and finished');
});

t.test('a token held past the deadline fails the waiting transfer, naming the holder', async (t) => {
  const r = await rig(t, [nic('nic0'), nic('hog0')], 1, 600);
  await r.machine.start();
  const b = await ImporterBinding.bind(r.kernel, 'nic0', r.mm);
  t.teardown(() => b.close());
  takeTicket(new Int32Array(r.machine.runTokens!.sab), 1);
  const x = await r.machine.device('nic0').handle.cmd({ op: 'va-stream', va: r.buf, len: MiB, cmdBytes: 256 * 1024 });
  t.equal(x.errno, 'EIO');
  t.match((x as { message?: string }).message, /nic0: DMA waited \d+ ms for a run token \(deadline 300 ms\); held by hog0/);
});

t.test('tokens off: no token block, the data path as before', async (t) => {
  const r = await rig(t, [nic('nic0'), nic('nic1'), nic('nic2')], 'off');
  t.equal(r.machine.runTokens, null, 'no run tokens on this machine');
  await r.machine.start();
  const b = await ImporterBinding.bind(r.kernel, 'nic0', r.mm);
  t.teardown(() => b.close());
  t.equal((await stream(r, 'nic0', MiB)).bytes, MiB);
  bytesEq(t, r.machine.device('nic0').shm.mem!.subarray(0, MiB), r.want, 'nic0 read the process buffer');
});
