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
 */
import { Worker } from 'node:worker_threads';
import { once } from 'node:events';
import { compiledModule } from '../src/devices/worker_entry.js';
import { PAGE_SIZE } from '../src/shm/constants.js';
import { MiB, sabBytes, timeCopy } from '../src/workloads/memcpy_baseline.js';

/** MB/s of one timed copy over [0, span) of two fresh buffers. */
export function memcpyRate(span: number, minBytes: number): () => number {
  const src = sabBytes(span);
  const dst = sabBytes(span);
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

/** Two threads, each copying its own `span`; returns a sampler of the aggregate MB/s and a close. */
export async function twoThreads(span: number): Promise<{ sample: (passes: number) => Promise<number>; close: () => Promise<void> }> {
  const go = new SharedArrayBuffer(4);
  const goWord = new Int32Array(go);
  const workers = [0, 1].map(() => new Worker(compiledModule('bench/memcpy_worker'), { workerData: { src: sabBytes(span).buffer, dst: sabBytes(span).buffer, chunk: MiB, go } }));
  await Promise.all(workers.map((w) => once(w, 'message')));
  let round = 0;
  return {
    async sample(passes: number): Promise<number> {
      round++;
      const done = workers.map((w) => once(w, 'message') as Promise<[{ bytes: number; t0: number; t1: number }]>);
      for (const w of workers) w.postMessage({ round, passes });
      // Pairs with the Atomics.wait on go in bench/memcpy_worker.ts.
      Atomics.store(goWord, 0, round);
      Atomics.notify(goWord, 0);
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
