/**
 * The copy baselines of `peervma bench` (DESIGN.md section 7): what one
 * (or two) threads copy through SharedArrayBuffers on this machine, with
 * nothing of the emulator in the way.
 *
 *   memcpy.dram       1 MiB chunks over DRAM_SPAN (256 MiB), one thread
 *   memcpy.cached     1 MiB chunks over CACHED_SPAN (16 MiB): in cache
 *   memcpy.scattered  page by page, from a list of scattered 4 KiB pages
 *                     (the same pages dma.p2p.scattered reads)
 *   memcpy.2threads   two worker threads, each its own span, aggregate
 *
 * A fresh buffer's copy rate is a property of that allocation: the same
 * copy (1 MiB chunks, one thread, samples alternating) over four pairs of
 * fresh 128 MiB buffers measured 5209 / 5823 / 6055 / 6283 MB/s, and
 * 5967 / 5036 / 5736 / 5971 in another process (load 1.6-1.9), each
 * pair's own samples within 1-3%. So a device row timed against buffers
 * of its own is compared with a different draw; the data-path rows also
 * take baselines over the very memory the device reads and writes
 * (sameMemoryRate, twoThreads with `spans`), sampled alternately with them.
 */
import { Worker } from 'node:worker_threads';
import { once } from 'node:events';
import { compiledModule } from '../src/devices/worker_entry.js';
import { PAGE_SIZE } from '../src/shm/constants.js';
import { MiB, sabBytes, timeCopy } from '../src/workloads/memcpy_baseline.js';

/** MB/s of one timed copy over [0, span) of two fresh buffers. */
export function memcpyRate(span: number, minBytes: number): () => number {
  return sameMemoryRate(sabBytes(span), sabBytes(span), minBytes);
}

/**
 * MB/s of one timed copy of `src` into `dst` (views of the same length:
 * the memory a device row reads and the memory it writes), as memcpyRate
 * times its own buffers (timeCopy: a warm-up pass, then whole passes).
 * The copy leaves dst holding src's bytes, as the device's stream does.
 */
export function sameMemoryRate(src: Uint8Array, dst: Uint8Array, minBytes: number): () => number {
  return () => timeCopy(src, dst, MiB, minBytes).rate / 1e6;
}

/** MB/s of a page-by-page copy of `pages` of `mem` into a contiguous buffer. */
export function scatteredRate(mem: Uint8Array, pages: readonly number[], minBytes: number): () => number {
  const dst = sabBytes(pages.length * PAGE_SIZE);
  const pass = () => {
    for (let i = 0; i < pages.length; i++) {
      const o = pages[i] * PAGE_SIZE;
      dst.set(mem.subarray(o, o + PAGE_SIZE), i * PAGE_SIZE);
    }
  };
  return () => {
    pass();
    const passes = Math.max(1, Math.round(minBytes / dst.length));
    const t0 = performance.now();
    for (let i = 0; i < passes; i++) pass();
    return (passes * dst.length) / ((performance.now() - t0) / 1000) / 1e6;
  };
}

/** Words of twoThreads' start line (bench/memcpy_worker.ts reads the same). */
export const GO = 0;
export const READY = 1;
const START_DEADLINE_MS = 10_000;

/** What one thread of twoThreads copies: [srcOff, +len) of src into [dstOff, +len) of dst. */
export interface ThreadSpan {
  readonly src: SharedArrayBuffer;
  readonly srcOff: number;
  readonly dst: SharedArrayBuffer;
  readonly dstOff: number;
  readonly len: number;
}

/**
 * Two threads, each copying its own `span` of fresh buffers, or the two
 * `spans` given (the memory a device row streams); returns a sampler of
 * the aggregate MB/s and a close.
 */
export async function twoThreads(span: number, spans?: readonly [ThreadSpan, ThreadSpan]): Promise<{ sample: (passes: number) => Promise<number>; close: () => Promise<void> }> {
  // Word GO: the round both may start; word READY: threads that got their round's message (they
  // leave together once both are waiting, not one message dispatch apart).
  const go = new SharedArrayBuffer(2 * Int32Array.BYTES_PER_ELEMENT);
  const goWord = new Int32Array(go);
  const fresh = (): ThreadSpan => ({ src: sabBytes(span).buffer as SharedArrayBuffer, srcOff: 0, dst: sabBytes(span).buffer as SharedArrayBuffer, dstOff: 0, len: span });
  const work = spans ?? [fresh(), fresh()];
  const workers = work.map((w) => new Worker(compiledModule('bench/memcpy_worker'), { workerData: { ...w, chunk: MiB, go } }));
  await Promise.all(workers.map((w) => once(w, 'message')));
  let round = 0;
  return {
    async sample(passes: number): Promise<number> {
      round++;
      const done = workers.map((w) => once(w, 'message') as Promise<[{ bytes: number; t0: number; t1: number }]>);
      for (const w of workers) w.postMessage({ round, passes });
      // Pairs with the Atomics.add on READY and the wait on GO in bench/memcpy_worker.ts.
      for (let ready = Atomics.load(goWord, READY); ready < workers.length * round; ready = Atomics.load(goWord, READY)) {
        if (Atomics.wait(goWord, READY, ready, START_DEADLINE_MS) === 'timed-out') throw new Error(`memcpy.2threads: a copy thread did not take round ${round} within ${START_DEADLINE_MS} ms`);
      }
      Atomics.store(goWord, GO, round);
      Atomics.notify(goWord, GO);
      const r = (await Promise.all(done)).map(([m]) => m);
      // Aggregate over the window both threads were copying in (absolute times, ms since the epoch).
      const t0 = Math.min(...r.map((x) => x.t0));
      const t1 = Math.max(...r.map((x) => x.t1));
      return r.reduce((s, x) => s + x.bytes, 0) / ((t1 - t0) / 1000) / 1e6;
    },
    close: async () => {
      await Promise.all(workers.map((w) => w.terminate()));
    },
  };
}
