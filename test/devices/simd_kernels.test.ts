// The camera's render and the colour engine's transform in WebAssembly SIMD
// (src/devices/models/simd_kernels.ts) against the workloads' independent
// references (src/workloads/reference/), on the shapes the scenarios do not
// reach: narrow rows (one group of 4 a row), bursts that start mid-row and
// wrap several rows (the kernel's per-row vector resets), negative seeds
// and large frame numbers (wrapping adds), input at odd element offsets,
// counts that are not a multiple of 4, and inputs longer than one burst.
// Behaviour only; speed is measured by `peervma bench`.
import t, { type Test } from 'tap';
import { BURST_BYTES, SimdColour, renderPatternSimd } from '../../src/devices/models/simd_kernels.js';
import { colourParams } from '../../src/devices/models/colour.js';
import { colourReference, colourReferenceParams } from '../../src/workloads/reference/colour.js';
import { patternReference } from '../../src/workloads/reference/frame_pattern.js';

t.test('SIMD render: narrow and odd-group widths, bursts starting mid-row and wrapping rows, equal the reference', async (t) => {
  const cases = [
    { width: 4, rows: 9, seed: 1, frame: 0, burst: 12 },
    { width: 12, rows: 7, seed: -3, frame: 0x7fffffff, burst: 20 },
    { width: 36, rows: 11, seed: 0x9e3779b9 | 0, frame: 5, burst: 44 },
    { width: 1284, rows: 5, seed: 7, frame: 123456, burst: 1000 },
  ];
  for (const c of cases) {
    const px = c.width * c.rows;
    const want = new Uint32Array(px);
    patternReference(want, c.seed, c.frame, c.width);
    const got = new Uint32Array(px);
    // First burst ends off the row grid, so every later one starts mid-row.
    for (let off = 0; off < px; off += c.burst) {
      t.ok(renderPatternSimd(got.subarray(off, Math.min(px, off + c.burst)), c.seed, c.frame, off, c.width), `width ${c.width}: burst at ${off} in SIMD`);
    }
    t.same(got, want, `width ${c.width}, seed ${c.seed}, frame ${c.frame}`);
  }
});

t.test('SIMD render: a burst larger than the module buffer or not whole groups is left to JS', async (t) => {
  t.notOk(renderPatternSimd(new Uint32Array(BURST_BYTES / 4 + 4), 1, 0, 0, 1280), 'one group past BURST_BYTES');
  t.notOk(renderPatternSimd(new Uint32Array(6), 1, 0, 0, 1280), '6 pixels');
  t.notOk(renderPatternSimd(new Uint32Array(8), 1, 0, 6, 12), 'first at pixel 6');
});

t.test('SIMD colour: odd offsets and counts, and inputs over one burst, equal the reference on the groups done', async (t) => {
  const all = new Int32Array(BURST_BYTES / 4 + 64);
  for (let i = 0; i < all.length; i++) all[i] = Math.imul(i + 7, 0x27d4eb2f) ^ (i << 3);
  all.set([0, -1, 0x00ff00ff, -0xff0100, 0x7f7f7f7f, -0x80808081], 3); // extreme channels for the i16 pair products
  // A fitted matrix, the schema's bounds, and the i16 edges the kernel accepts (pmaddwd's one overflow needs -32768 on both sides).
  const matrices = [
    [281, -17, -9, -33, 301, 5, 12, -50, 290],
    [4096, -4096, 4096, -4096, 4096, -4096, 4096, -4096, 4096],
    [32767, -32768, 32767, -32768, 32767, -32768, 1, -1, 0],
  ];
  for (const matrix of matrices) colourCase(t, { matrix, gamma: [1.8, 2.2, 0.7] }, all);
});

function colourCase(t: Test, props: { matrix: number[]; gamma: number[] }, all: Int32Array): void {
  const q = colourParams(props);
  const engine = new SimdColour(q.matrix, q.lut);
  for (const [start, count] of [[3, 1], [1, 7], [5, 4], [3, 4099], [7, 37], [0, BURST_BYTES / 4 + 9]] as const) {
    const inp = all.subarray(start, start + count);
    const out = new Int32Array(count).fill(0x5a5a5a5a);
    const done = engine.transform(inp, out);
    t.equal(done, Math.min(count, BURST_BYTES / 4) & ~3, `${count} pixels at ${start}: the whole groups of one burst`);
    const want = new Uint8Array(count * 4);
    colourReference(new Uint8Array(inp.slice().buffer), want, colourReferenceParams(props));
    t.same(new Uint8Array(out.buffer, 0, done * 4), want.subarray(0, done * 4), `${count} pixels at ${start}`);
    t.ok(out.subarray(done).every((v) => v === 0x5a5a5a5a), `${count} pixels at ${start}: nothing written past the groups done`);
  }
}

t.test('SIMD colour: a matrix entry outside i16 (the kernel multiplies in i16 pairs) is refused, naming the entry', async (t) => {
  const lut = new Array<number>(768).fill(0);
  t.throws(() => new SimdColour([1, 2, 3, 4, 40000, 6, 7, 8, 9], lut), /entry 4 = 40000 is not an i16/);
  t.throws(() => new SimdColour([1, 2, 3, 4, 5, 6, 7, 32768, 9], lut), /entry 7 = 32768 is not an i16/);
  t.throws(() => new SimdColour([-32769, 2, 3, 4, 5, 6, 7, 8, 9], lut), /entry 0 = -32769 is not an i16/);
  t.doesNotThrow(() => new SimdColour([32767, -32768, 3, 4, 5, 6, 7, 8, 9], lut), 'the i16 edges are accepted');
  t.throws(() => new SimdColour([1, 2, 3], lut), /has 3 entries, not 9/);
});
