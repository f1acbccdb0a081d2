/**
 * The raw SAB memcpy baseline every throughput figure is printed beside
 * (DESIGN.md section 7): TypedArray.prototype.set between two
 * SharedArrayBuffers, one thread, in chunks of `chunk` bytes.
 */

export interface MemcpyResult {
  readonly chunk: number;
  readonly bytes: number;
  readonly seconds: number;
  /** Bytes per second. */
  readonly rate: number;
}

export function measureMemcpy(chunk: number, totalBytes = 256 * 1024 * 1024, spanBytes = 16 * 1024 * 1024): MemcpyResult {
  const src = new Uint8Array(new SharedArrayBuffer(spanBytes));
  const dst = new Uint8Array(new SharedArrayBuffer(spanBytes));
  for (let i = 0; i < spanBytes; i += 4096) src[i] = i & 255;
  const step = Math.min(chunk, spanBytes);
  const pass = () => {
    for (let off = 0; off + step <= spanBytes; off += step) dst.set(src.subarray(off, off + step), off);
  };
  pass(); // warm-up: page in both buffers, let the JIT settle
  const passes = Math.max(1, Math.round(totalBytes / spanBytes));
  const t0 = performance.now();
  for (let i = 0; i < passes; i++) pass();
  const seconds = (performance.now() - t0) / 1000;
  const bytes = passes * spanBytes;
  return { chunk, bytes, seconds, rate: bytes / seconds };
}
