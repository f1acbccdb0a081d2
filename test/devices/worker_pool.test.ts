// Device workers that outlive a run (src/devices/worker_pool.ts): a machine given a pool
// re-configures the thread an earlier machine's device ran on, with nothing of that
// machine left in it (process binding, error log); a machine whose run failed gives
// nothing back; an idle worker that dies leaves the pool; a pool nobody closed never
// keeps the process alive, and close() ends every thread.
import t, { type Test } from 'tap';
import { oneCommand } from '../fixtures/host_completion.js';
import { childNode } from '../fixtures/child_node.js';
import { pathToFileURL } from 'node:url';
import { Machine, type DeviceSpec } from '../../src/devices/machine.js';
import type { DeviceWorker } from '../../src/devices/device_worker.js';
import { DeviceWorkerPool } from '../../src/devices/worker_pool.js';
import { ImporterBinding } from '../../src/drivers/importer_binding.js';
import { Kernel } from '../../src/kernel/kernel.js';
import { PROT_READ, PROT_WRITE } from '../../src/kernel/mm.js';
import { compareScenario } from '../../src/scenario/run.js';
import { PAGE_SIZE } from '../../src/shm/constants.js';
import { CqStatus } from '../../src/shm/ring.js';
import { formatSummary } from '../../src/trace/summary.js';
import { details, smallChain } from '../fixtures/camera_chain.js';

const MiB = 1024 * 1024;
const cam = (name = 'cam0'): DeviceSpec => ({ name, kind: 'camera', memBytes: 256 * 1024, barBytes: 0, props: {} });
const nic = (name = 'nic0'): DeviceSpec => ({ name, kind: 'nic', memBytes: 2 * MiB, barBytes: 0, props: {} });
const faulty = (name: string): DeviceSpec => ({ name, kind: 'x-faulty', memBytes: 0, barBytes: 0, props: { fault: 'throw', when: 'command' } });

async function machine(t: Test, devices: DeviceSpec[], pool: DeviceWorkerPool): Promise<Machine> {
  const m = await Machine.create({ ramBytes: 8 * MiB, devices, timeoutMs: 5000, runTokens: 'off' }, { pool });
  t.teardown(() => m.shutdown({ recycle: false }));
  return m;
}

function newPool(t: Test): DeviceWorkerPool {
  const pool = new DeviceWorkerPool();
  t.teardown(() => pool.close());
  return pool;
}

/** A pool holding one idle camera worker (a clean machine ran on it and gave it back); that worker's thread. */
async function idleCamera(t: Test): Promise<{ pool: DeviceWorkerPool; thread: DeviceWorker }> {
  const pool = newPool(t);
  const m = await machine(t, [cam()], pool);
  const thread = m.device('cam0').handle.thread;
  await m.shutdown();
  t.equal(pool.idle, 1, 'the clean machine gave its worker back');
  return { pool, thread };
}

/** A camera frame into RAM: a command that must succeed on a working camera. */
async function frameToRam(t: Test, m: Machine): Promise<void> {
  const buf = m.ram.allocContig(2).start * PAGE_SIZE;
  const c = await oneCommand(m, 'cam0', { opcode: 1, src: 0, dst: buf, len: 8192, args: [0, 1, 64] }, { qid: 1 });
  t.equal(c.status, CqStatus.Success, 'the camera wrote a frame');
  t.ok(m.shm.ram.subarray(buf, buf + 8192).some((b) => b !== 0), 'the frame landed in RAM');
}

t.test('the next machine gets the same thread back, working, with no listener left behind', async (t) => {
  const pool = newPool(t);
  const seen: { thread: number; reused: number; listeners: number[] }[] = [];
  for (let run = 0; run < 3; run++) {
    const m = await machine(t, [cam()], pool);
    await m.start();
    await frameToRam(t, m);
    const w = m.device('cam0').handle.thread.worker;
    seen.push({ thread: w.threadId, reused: m.boot.reused, listeners: ['exit', 'error', 'message'].map((e) => w.listenerCount(e)) });
    await m.shutdown();
    t.equal(pool.idle, 1, `run ${run}: the camera's worker went back to the pool`);
  }
  t.same(seen.map((s) => s.thread), [seen[0].thread, seen[0].thread, seen[0].thread], 'one thread served the three machines');
  t.same(seen.map((s) => s.reused), [0, 1, 1], 'boot says which workers were reused');
  t.same(seen[2].listeners, seen[0].listeners, 'exit, error and message listeners do not pile up per run');
  await pool.close();
  t.equal(pool.idle, 0);
});

t.test('a reset worker keeps nothing of the last machine: no process binding, no error log', async (t) => {
  const pool = newPool(t);
  const RW = PROT_READ | PROT_WRITE;
  const m1 = await machine(t, [nic(), cam()], pool);
  await m1.start();
  const k1 = Kernel.boot(m1, { check: true });
  const mm1 = k1.createMm();
  const b1 = await ImporterBinding.bind(k1, 'nic0', mm1);
  const va1 = await mm1.mmap({ length: 64 * 1024, prot: RW });
  const s1 = await m1.device('nic0').handle.cmd({ op: 'va-stream', va: va1, len: 64 * 1024, cmdBytes: 64 * 1024, write: true, passes: 1 });
  t.equal(s1.errno, 0, 'run 1: the bound NIC streams by VA');
  t.ok(Object.keys(await m1.device('nic0').handle.cmd({ op: 'va-counters' })).length > 1, 'run 1: the NIC has VA counters');
  const bad = await oneCommand(m1, 'cam0', { opcode: 1, src: 0, dst: 64 * MiB, len: 8192, args: [0, 1, 64] }, { qid: 1 });
  t.equal(bad.status, CqStatus.DataTransferError);
  t.equal((await m1.device('cam0').handle.call('errors')).length, 1, 'run 1: the camera logged its bad DMA');
  await b1.close();
  await m1.shutdown();

  const m2 = await machine(t, [nic(), cam()], pool);
  t.equal(m2.boot.reused, 2, 'run 2 runs on both warm workers');
  await m2.start();
  const nic0 = m2.device('nic0').handle;
  const s2 = await nic0.cmd({ op: 'va-stream', va: va1, len: 64 * 1024, cmdBytes: 64 * 1024, write: true, passes: 1 });
  t.match(s2, { errno: 'EINVAL', message: /not bound to a process/ }, 'run 2: the NIC is not bound to run 1\'s process');
  t.same(await nic0.cmd({ op: 'va-counters' }), { errno: 0 }, 'run 2: no VA counters of run 1');
  t.same(await m2.device('cam0').handle.call('errors'), [], 'run 2: the camera\'s error log is empty');
  const k2 = Kernel.boot(m2, { check: true });
  const mm2 = k2.createMm();
  const b2 = await ImporterBinding.bind(k2, 'nic0', mm2);
  t.teardown(() => b2.close());
  const va2 = await mm2.mmap({ length: 64 * 1024, prot: RW });
  t.equal((await nic0.cmd({ op: 'va-stream', va: va2, len: 64 * 1024, cmdBytes: 64 * 1024, write: true, passes: 1 })).errno, 0, 'run 2: binds afresh and streams');
  await frameToRam(t, m2);
  t.equal(b2.violations().count, 0, 'run 2: the safety checker saw no stale access');
});

t.test('a machine whose device failed gives nothing back; the next machine spawns and works', async (t) => {
  const pool = newPool(t);
  const m1 = await machine(t, [cam(), faulty('bad0')], pool);
  await m1.start();
  await t.rejects(oneCommand(m1, 'bad0', { opcode: 1, src: 0, dst: PAGE_SIZE, len: 16, args: [] }, { qid: 1 }), { name: 'DeviceError', device: 'bad0', what: 'crashed' });
  const camThread = m1.device('cam0').handle.thread;
  await m1.shutdown();
  t.equal(pool.idle, 0, 'not even the healthy camera went back');
  t.equal(camThread.alive, false, 'the camera of the failed run was terminated');
  const m2 = await machine(t, [cam()], pool);
  t.equal(m2.boot.reused, 0);
  t.not(m2.device('cam0').handle.thread.worker.threadId, camThread.worker.threadId, 'a new thread');
  await m2.start();
  await frameToRam(t, m2);
});

t.test('a run its caller calls failed (recycle: false) gives nothing back', async (t) => {
  const pool = newPool(t);
  const m = await machine(t, [cam()], pool);
  const thread = m.device('cam0').handle.thread;
  await m.shutdown({ recycle: false });
  t.equal(pool.idle, 0);
  t.equal(thread.alive, false);
});

t.test('an idle worker that dies leaves the pool', async (t) => {
  const { pool, thread } = await idleCamera(t);
  await thread.worker.terminate(); // from outside the pool: as a crash would end it
  for (let i = 0; i < 100 && pool.idle > 0; i++) await new Promise((r) => setTimeout(r, 20));
  t.equal(pool.idle, 0, 'the dead worker left the pool');
  const m2 = await machine(t, [cam()], pool);
  t.equal(m2.boot.reused, 0, 'the next machine spawned instead');
  await m2.start();
  await frameToRam(t, m2);
});

/** A compiled module of src/devices, as a URL a child's import() takes. */
const dist = (p: string) => pathToFileURL(`${process.cwd()}/dist/src/devices/${p}.js`).href;

t.test('an idle pooled worker holds at most its last machine\'s memory, released when the next machine starts', async (t) => {
  // Each machine's 256 MiB of RAM is touched, then main drops it (run() returns): only the idle
  // worker can still hold it. It keeps its last machine retired (V8's optimized code keeps its
  // maps, workers/runtime/thread_machine.ts) until the next machine starts; never more than one.
  // Without reset's collection the child grew by ~256 MiB a run; without the release at start the
  // started figure is the idle one.
  const script = `
    const { Machine } = await import('${dist('machine')}');
    const { DeviceWorkerPool } = await import('${dist('worker_pool')}');
    const pool = new DeviceWorkerPool();
    const settle = async () => { for (let i = 0; i < 2; i++) { await new Promise((r) => setTimeout(r, 100)); globalThis.gc(); } return process.memoryUsage.rss(); };
    const spec = { ramBytes: 256 * 1024 * 1024, devices: [{ name: 'cam0', kind: 'camera', memBytes: 262144, barBytes: 0, props: {} }], timeoutMs: 10000, runTokens: 'off' };
    const started = async () => { const m = await Machine.create(spec, { pool }); await m.start(); return m; };
    const run = async (m) => { m.shm.ram.fill(1); await m.shutdown(); };
    const base = await settle();
    const idle = [], next = [];
    let m = await started();
    for (let i = 0; i < 4; i++) {
      await run(m);
      m = null;
      idle.push(await settle() - base);
      m = await started();
      next.push(await settle() - base);
    }
    await m.shutdown();
    await pool.close();
    console.log(JSON.stringify({ idle, next, closed: await settle() - base }));`;
  const out = await childNode(script, ['--expose-gc']);
  t.equal(out.code, 0, out.stderr.trim());
  const r = JSON.parse(out.stdout) as { idle: number[]; next: number[]; closed: number };
  const MiB = 2 ** 20;
  const show = (xs: number[]) => xs.map((x) => (x / MiB).toFixed(0)).join(', ');
  t.ok(r.idle.every((x) => x < 256 * MiB + 64 * MiB), `idle, at most one 256 MiB machine held (MiB over the start: ${show(r.idle)})`);
  t.ok(r.next.every((x) => x < 64 * MiB), `once the next machine started, none (${show(r.next)})`);
  t.ok(r.closed < 64 * MiB, `after close, none (${(r.closed / MiB).toFixed(0)} MiB)`);
});

t.test('a pool nobody closed does not keep the process alive; close() ends every idle thread', async (t) => {
  const { pool, thread } = await idleCamera(t);
  await pool.close();
  await pool.close(); // idempotent
  t.equal(pool.idle, 0);
  t.equal(thread.alive, false, 'close() terminated the idle worker');

  // A child that leaves a worker idle in a pool it never closes must still exit by itself.
  const script = `
    const { Machine } = await import('${dist('machine')}');
    const { DeviceWorkerPool } = await import('${dist('worker_pool')}');
    const pool = new DeviceWorkerPool();
    const m = await Machine.create({ ramBytes: 4 * 1024 * 1024, devices: [{ name: 'cam0', kind: 'camera', memBytes: 262144, barBytes: 0, props: {} }], timeoutMs: 5000 }, { pool });
    await m.shutdown();
    console.log('idle', pool.idle);`;
  const t0 = Date.now();
  const out = await childNode(script);
  t.equal(out.code, 0, `the child exited by itself (${out.stderr.trim()})`);
  t.equal(out.stdout.trim(), 'idle 1', 'with a worker still idle in its pool');
  t.ok(Date.now() - t0 < 15000, 'without waiting for a timeout');
});

t.test('a Machine.create that throws leaves no thread behind (the process exits by itself)', async (t) => {
  // A bad run-token setting is refused before any spawn; a step that throws after the first
  // device's thread exists (here: the pool's take() for the second device) terminates that thread.
  const script = `
    const { Machine } = await import('${dist('machine')}');
    const spec = { ramBytes: 4 * 1024 * 1024, timeoutMs: 5000, runTokens: 'off', devices: ['cam0', 'cam1'].map((name) => ({ name, kind: 'camera', memBytes: 262144, barBytes: 0, props: {} })) };
    const refused = await Machine.create({ ...spec, runTokens: 1.5 }).then(() => 'created', (e) => e.message);
    const pool = { take: (kind, name) => { if (name === 'cam1') throw new Error('take failed'); return null; } };
    const midway = await Machine.create(spec, { pool }).then(() => 'created', (e) => e.message);
    console.log(JSON.stringify([refused, midway]));`;
  const t0 = Date.now();
  const out = await childNode(script);
  t.equal(out.code, 0, `the child exited by itself (${out.stderr.trim()})`);
  t.match(JSON.parse(out.stdout), [/run tokens: expected/, 'take failed']);
  t.ok(Date.now() - t0 < 15000, 'without waiting for a timeout');
});

t.test('--compare with a warm-up: each timed run reuses its warm-up\'s workers and checks bit-exact', async (t) => {
  const [p, b] = await compareScenario(await smallChain(), { seed: 9, frames: 2 }, true);
  for (const r of [p, b]) {
    t.equal(r.machine.reused, r.machine.devices, `${r.mode}: every device worker was its warm-up's`);
    t.same(details(r).map(([ok]) => ok), details(r).map(() => true), `${r.mode}: every check passed (${details(r).map(([, d]) => d).join('; ')})`);
    t.match(formatSummary(r, 200), /2 workers \(reused 2 warm, /, `${r.mode}: the machine line says so`);
  }
  t.match(details(p)[0], [true, '2 of 2 frames']);
});
