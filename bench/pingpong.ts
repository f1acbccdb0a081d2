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

/** The worker end (bench/pingpong_worker.ts) over `w`'s two words, ready to return `rounds` balls. */
async function otherEnd(w: Int32Array, rounds: number): Promise<Worker> {
  const worker = new Worker(compiledModule('bench/pingpong_worker'), { workerData: { sab: w.buffer, rounds } });
  await once(worker, 'message');
  return worker;
}

export async function pingPong(mode: 'wait' | 'waitAsync', rounds: number): Promise<PingPongResult> {
  const w = new Int32Array(new SharedArrayBuffer(8));
  const worker = await otherEnd(w, rounds);
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

/** Longest one round trip of roundTripper may take before it gives up on the worker. */
const ROUND_TRIP_DEADLINE_MS = 2000;

/**
 * The same round trip one call at a time (bench/dma_rig.ts's
 * atomics.rtt.streaming): main stores the ball and blocks in Atomics.wait
 * until the worker returns it, ROUND_TRIP_DEADLINE_MS at most.
 */
export async function roundTripper(): Promise<{ roundTrip: () => void; close: () => Promise<number> }> {
  const w = new Int32Array(new SharedArrayBuffer(8));
  const worker = await otherEnd(w, 2 ** 30);
  let i = 0;
  const roundTrip = (): void => {
    i++;
    const t0 = performance.now();
    // Pairs with the wait on word 0 and the store/notify of word 1 in bench/pingpong_worker.ts.
    Atomics.store(w, 0, i);
    Atomics.notify(w, 0);
    while (Atomics.load(w, 1) < i) {
      if (performance.now() - t0 > ROUND_TRIP_DEADLINE_MS) throw new Error(`bench: atomics.rtt.streaming: the ping-pong worker did not return round ${i} within ${ROUND_TRIP_DEADLINE_MS} ms`);
      Atomics.wait(w, 1, i - 1, ROUND_TRIP_DEADLINE_MS);
    }
  };
  return { roundTrip, close: () => worker.terminate() };
}
