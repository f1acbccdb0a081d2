/**
 * Boot rows: how long 64 device workers take to be up and configured
 * (Machine.create + start: spawn, load the worker's modules, comlink
 * configure), against 64 plain workers that load nothing (boot.64.plain).
 */
import { Worker } from 'node:worker_threads';
import { once } from 'node:events';
import { Machine } from '../src/devices/machine.js';
import { compiledModule } from '../src/devices/worker_entry.js';
import { repeat, type RowSet } from './stats.js';

const N = 64;

async function plain(): Promise<number> {
  const t0 = performance.now();
  const ws = Array.from({ length: N }, () => new Worker(compiledModule('bench/plain_worker')));
  await Promise.all(ws.map((w) => once(w, 'message')));
  const ms = performance.now() - t0;
  await Promise.all(ws.map((w) => w.terminate()));
  return ms;
}

async function devices(): Promise<number> {
  const t0 = performance.now();
  const m = await Machine.create({ ramBytes: 4 * 1024 * 1024, timeoutMs: 60000, devices: Array.from({ length: N }, (_, i) => ({ name: `m${i}`, kind: 'mirror', memBytes: 64 * 1024, barBytes: 0, props: {} })) });
  try {
    await m.start();
    return performance.now() - t0;
  } finally {
    await m.shutdown();
  }
}

export async function bootRows(rows: RowSet, repeats: number): Promise<void> {
  rows.add('boot.64.plain', 'ms', await repeat(repeats, plain), null, '64 worker_threads of an empty module, until each posted a message');
  rows.add('boot.64', 'ms', await repeat(repeats, devices), 'boot.64.plain', '64 mirror device workers: Machine.create (spawn + configure) + start');
}
