/**
 * The other end of the Atomics ping-pong baseline: waits for the ball on
 * word 0 and returns it on word 1, `rounds` times.
 */
import { parentPort, workerData } from 'node:worker_threads';

const { sab, rounds } = workerData as { sab: SharedArrayBuffer; rounds: number };
const w = new Int32Array(sab);
parentPort!.postMessage('ready');
for (let i = 1; i <= rounds; i++) {
  while (Atomics.load(w, 0) < i) Atomics.wait(w, 0, i - 1, 1000);
  // Pairs with the wait on word 1 in bench/pingpong.ts.
  Atomics.store(w, 1, i);
  Atomics.notify(w, 1);
}
