/**
 * One thread of the memcpy.2threads baseline (bench/memcpy.ts): copies its
 * own span (or the one it was given) in 1 MiB chunks when told to start, for `passes` passes, and
 * reports the bytes and the time it took.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { copyPass } from '../src/workloads/memcpy_baseline.js';
import { GO, READY } from './memcpy.js';

const { src, srcOff, dst, dstOff, len, chunk, go } = workerData as { src: SharedArrayBuffer; srcOff: number; dst: SharedArrayBuffer; dstOff: number; len: number; chunk: number; go: SharedArrayBuffer };
const s = new Uint8Array(src, srcOff, len);
const d = new Uint8Array(dst, dstOff, len);
const goWord = new Int32Array(go);
copyPass(s, d, chunk); // warm-up: page in, JIT
parentPort!.on('message', (m: { round: number; passes: number }) => {
  // Both threads leave together: ready, then wait for GO (pairs with bench/memcpy.ts's sample).
  Atomics.add(goWord, READY, 1);
  Atomics.notify(goWord, READY);
  while (Atomics.load(goWord, GO) < m.round) Atomics.wait(goWord, GO, m.round - 1, 1000);
  const t0 = performance.now();
  for (let i = 0; i < m.passes; i++) copyPass(s, d, chunk);
  // Absolute times: a worker's performance.now() counts from its own start.
  const o = performance.timeOrigin;
  parentPort!.postMessage({ bytes: m.passes * s.length, t0: o + t0, t1: o + performance.now() });
});
parentPort!.postMessage('ready');
