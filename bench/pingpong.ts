/**
 * Atomics ping-pong round trip main <-> worker: the baseline every
 * latency figure (doorbell, invalidation ack) is printed beside. Two
 * flavours: main blocks in Atomics.wait (the floor), or main waits with
 * Atomics.waitAsync (what the kernel side does, event loop free).
 */
import { Worker } from 'node:worker_threads';
import { once } from 'node:events';
import { compiledModule } from '../src/devices/worker_entry.js';

export interface PingPongResult {
  readonly mode: 'wait' | 'waitAsync';
  readonly rounds: number;
  readonly roundTripUs: number;
}

export async function pingPong(mode: 'wait' | 'waitAsync', rounds: number): Promise<PingPongResult> {
  const sab = new SharedArrayBuffer(8);
  const w = new Int32Array(sab);
  const worker = new Worker(compiledModule('bench/pingpong_worker'), { workerData: { sab, rounds } });
  await once(worker, 'message');
  const t0 = performance.now();
  for (let i = 1; i <= rounds; i++) {
    Atomics.store(w, 0, i);
    Atomics.notify(w, 0);
    if (mode === 'wait') {
      while (Atomics.load(w, 1) < i) Atomics.wait(w, 1, i - 1, 1000);
    } else {
      while (Atomics.load(w, 1) < i) {
        const r = Atomics.waitAsync(w, 1, i - 1, 1000);
        if (r.async) await r.value;
      }
    }
  }
  const us = ((performance.now() - t0) * 1000) / rounds;
  await worker.terminate();
  return { mode, rounds, roundTripUs: us };
}
