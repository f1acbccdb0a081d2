/**
 * The raw SAB memcpy baseline every throughput figure is printed beside
 * (DESIGN.md section 7): TypedArray.prototype.set between two
 * SharedArrayBuffers, one thread, in chunks of `chunk` bytes.
 *
 * Two spans: DRAM scale (DRAM_SPAN, far beyond what this host's caches
 * hold in practice — copies level off from 64 MiB up) is the machine's
 * copy speed and the one ratios are taken against; the cached span
 * (CACHED_SPAN) reads about 2x faster and is shown beside it so nobody
 * mistakes one for the other.
 */

export const MiB = 1024 * 1024;
/** Span of the DRAM-scale baseline. */
export const DRAM_SPAN = 256 * MiB;
/** Span of the cached baseline (sits in the last-level cache). */
export const CACHED_SPAN = 16 * MiB;

export interface MemcpyResult {
  readonly chunk: number;
  readonly span: number;
  readonly bytes: number;
  readonly seconds: number;
  /** Bytes per second. */
  readonly rate: number;
}

/** One pass of [0, span) from src to dst in `chunk`-byte copies. */
export function copyPass(src: Uint8Array, dst: Uint8Array, chunk: number, span = Math.min(src.length, dst.length)): void {
  const step = Math.min(chunk, span);
  for (let off = 0; off + step <= span; off += step) dst.set(src.subarray(off, off + step), off);
}

/** Times whole passes until at least `minBytes` were copied; one warm-up pass first. */
export function timeCopy(src: Uint8Array, dst: Uint8Array, chunk: number, minBytes: number, span = Math.min(src.length, dst.length)): MemcpyResult {
  copyPass(src, dst, chunk, span); // page in both buffers, let the JIT settle
  const passes = Math.max(1, Math.round(minBytes / span));
  const t0 = performance.now();
  for (let i = 0; i < passes; i++) copyPass(src, dst, chunk, span);
  const seconds = (performance.now() - t0) / 1000;
  const bytes = passes * span;
  return { chunk, span, bytes, seconds, rate: bytes / seconds };
}

export function sabBytes(n: number): Uint8Array {
  const a = new Uint8Array(new SharedArrayBuffer(n));
  for (let i = 0; i < n; i += 4096) a[i] = i & 255;
  return a;
}

export function measureMemcpy(chunk: number, totalBytes = 2 * DRAM_SPAN, spanBytes = DRAM_SPAN): MemcpyResult {
  return timeCopy(sabBytes(spanBytes), sabBytes(spanBytes), chunk, totalBytes);
}

export interface Baselines {
  readonly dram: MemcpyResult;
  readonly cached: MemcpyResult;
}

let memo: Baselines | null = null;

/**
 * The run summaries' baselines, 1 MiB chunks: measured once per process
 * (the buffers cost 2 x DRAM_SPAN of memory and ~0.3 s), so both runs of
 * a --compare share the same figure.
 */
export function memcpyBaselines(): Baselines {
  memo ??= { dram: measureMemcpy(MiB, DRAM_SPAN, DRAM_SPAN), cached: measureMemcpy(MiB, 16 * CACHED_SPAN, CACHED_SPAN) };
  return memo;
}
