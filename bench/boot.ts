/**
 * Boot rows: how long device workers take to be up and configured
 * (Machine.create + start: spawn, load the worker's bundle, comlink
 * configure), against plain workers that load nothing, and what an idle
 * device worker costs in host memory.
 *
 *   boot.64.plain   64 worker_threads of an empty module, until each posted
 *   boot.64         64 mirror device workers: create + start
 *   boot.256        256 mirror device workers: create + start + one control
 *                   call answered by each (the issue 15 figure: < 10 s)
 *   boot.rss.plain  host RSS growth per live empty worker (Node's floor)
 *   boot.rss        host RSS growth per idle device worker, over the 256 of
 *                   boot.256, measured after they all answered and settled
 *
 * RSS is process.memoryUsage.rss() of the main process (workers are
 * threads of it) before spawning and after, divided by the worker count;
 * the machine's SABs are tiny here (64 KiB per device, untouched).
 */
import { Worker } from 'node:worker_threads';
import { once } from 'node:events';
import { Machine } from '../src/devices/machine.js';
import { compiledModule } from '../src/devices/worker_entry.js';
import { repeat, type RowSet } from './stats.js';

const MiB = 1024 * 1024;
/** Lets freed worker memory go back and new workers finish settling before RSS is read. */
const SETTLE_MS = 300;

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

async function plain(n: number, module: string): Promise<{ ms: number; rssPerWorker: number }> {
  const rss0 = process.memoryUsage.rss();
  const t0 = performance.now();
  const ws = Array.from({ length: n }, () => new Worker(compiledModule(module)));
  await Promise.all(ws.map((w) => once(w, 'message')));
  const ms = performance.now() - t0;
  await sleep(SETTLE_MS);
  const rssPerWorker = (process.memoryUsage.rss() - rss0) / n;
  await Promise.all(ws.map((w) => w.terminate()));
  return { ms, rssPerWorker };
}

async function devices(n: number, answer: boolean): Promise<{ ms: number; rssPerWorker: number }> {
  const rss0 = process.memoryUsage.rss();
  const t0 = performance.now();
  const m = await Machine.create({ ramBytes: 4 * MiB, timeoutMs: 60000, devices: Array.from({ length: n }, (_, i) => ({ name: `m${i}`, kind: 'mirror', memBytes: 64 * 1024, barBytes: 0, props: {} })) });
  try {
    await m.start();
    if (answer) {
      const r = await m.race(Promise.all(m.devices.map((d) => d.handle.cmd({ op: 'va-counters' }))));
      const bad = r.find((x) => x.errno !== 0);
      if (bad) throw new Error(`bench: boot.${n}: a device did not answer: ${JSON.stringify(bad)}`);
    }
    const ms = performance.now() - t0;
    await sleep(SETTLE_MS);
    return { ms, rssPerWorker: (process.memoryUsage.rss() - rss0) / n };
  } finally {
    await m.shutdown();
  }
}

export async function bootRows(rows: RowSet, repeats: number, bigRepeats = 1): Promise<void> {
  rows.add('boot.64.plain', 'ms', await repeat(repeats, async () => (await plain(64, 'bench/plain_worker')).ms), null, '64 worker_threads of an empty module, until each posted a message');
  rows.add('boot.64', 'ms', await repeat(repeats, async () => (await devices(64, false)).ms), 'boot.64.plain', '64 mirror device workers: Machine.create (spawn + configure) + start');
  const big: number[] = [];
  const rss: number[] = [];
  for (let i = 0; i < bigRepeats; i++) {
    await sleep(SETTLE_MS);
    const r = await devices(256, true);
    big.push(r.ms);
    rss.push(r.rssPerWorker / MiB);
  }
  const runs = `${bigRepeats} run${bigRepeats === 1 ? '' : 's'}`;
  rows.add('boot.256', 'ms', big, 'boot.64', `256 mirror device workers: create + start + one control call answered by each; ${runs}`);
  rows.add('boot.rss.plain', 'MiB', await repeat(bigRepeats, async () => (await plain(64, 'bench/alive_worker')).rssPerWorker / MiB), null, `host RSS growth per live empty worker_thread, over 64 (Node floor); ${runs}`);
  rows.add('boot.rss', 'MiB', rss, 'boot.rss.plain', `host RSS growth per idle device worker, over the 256 of boot.256 (process.memoryUsage.rss delta / 256); ${runs}`);
}
