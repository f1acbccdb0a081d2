// The data-path rows' same-memory baselines (bench/memcpy.ts) copy the very
// bytes they are given, and nothing else (not their speed): sameMemoryRate
// over views at offsets of larger buffers, twoThreads over two given spans
// (each thread its own source and destination, at offsets).
import t from 'tap';
import { sameMemoryRate, twoThreads } from '../../bench/memcpy.js';

const MiB = 1024 * 1024;

function patterned(n: number, seed: number): Uint8Array {
  const a = new Uint8Array(new SharedArrayBuffer(n));
  // No period a test offset could alias: every 256-byte block of the buffer differs.
  for (let i = 0; i < n; i++) a[i] = ((i ^ (i >>> 8) ^ (i >>> 16)) + seed) & 0xff;
  return a;
}

const same = (a: Uint8Array, b: Uint8Array) => Buffer.from(a.buffer, a.byteOffset, a.length).equals(Buffer.from(b.buffer, b.byteOffset, b.length));

t.test('sameMemoryRate copies src into dst, in place, and nothing around them', async (t) => {
  const src = patterned(4 * MiB, 1);
  const dst = patterned(4 * MiB, 2);
  const before = dst.slice();
  const from = src.subarray(MiB + 4096, 3 * MiB + 4096);
  const into = dst.subarray(512 * 1024, 512 * 1024 + 2 * MiB);
  const rate = sameMemoryRate(from, into, 4 * MiB)();
  t.ok(rate > 0 && Number.isFinite(rate), `a rate (${rate.toFixed(0)} MB/s)`);
  t.ok(same(into, from), 'dst holds src');
  t.ok(same(dst.subarray(0, 512 * 1024), before.subarray(0, 512 * 1024)), 'bytes before dst untouched');
  t.ok(same(dst.subarray(512 * 1024 + 2 * MiB), before.subarray(512 * 1024 + 2 * MiB)), 'bytes after dst untouched');
});

t.test('twoThreads with spans: each thread copies its own span, at its offsets', async (t) => {
  const src = patterned(4 * MiB, 3);
  const a = patterned(2 * MiB, 4);
  const b = patterned(2 * MiB, 5);
  const [a0, b0] = [a.slice(), b.slice()];
  const half = MiB;
  const sab = (x: Uint8Array) => x.buffer as SharedArrayBuffer;
  const threads = await twoThreads(half, [
    { src: sab(src), srcOff: 4096, dst: sab(a), dstOff: 8192, len: half },
    { src: sab(src), srcOff: 4096 + half, dst: sab(b), dstOff: 0, len: half },
  ]);
  try {
    const rate = await threads.sample(1);
    t.ok(rate > 0 && Number.isFinite(rate), `an aggregate rate (${rate.toFixed(0)} MB/s)`);
  } finally {
    await threads.close();
  }
  t.ok(same(a.subarray(8192, 8192 + half), src.subarray(4096, 4096 + half)), 'thread 0 copied its span');
  t.ok(same(b.subarray(0, half), src.subarray(4096 + half, 4096 + 2 * half)), 'thread 1 copied its span');
  t.ok(same(a.subarray(0, 8192), a0.subarray(0, 8192)) && same(a.subarray(8192 + half), a0.subarray(8192 + half)), 'nothing else of thread 0\'s destination changed');
  t.ok(same(b.subarray(half), b0.subarray(half)), 'nothing else of thread 1\'s destination changed');
});
