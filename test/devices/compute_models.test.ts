// The devices' compute (src/devices/models/) against the workloads'
// independent references (src/workloads/reference/), in process, on the
// edges the scenarios rarely reach: ragged checksum tails and odd chunking,
// word counts that are not a multiple of the checksum's four lanes,
// matrices at the ends of their range, bursts that start mid-row. Behaviour
// only; speed is measured by `peervma bench`.
import t from 'tap';
import { StreamChecksum, checksum } from '../../src/devices/models/checksum.js';
import { accelInit, accelInitStep, accelStep, accelTransform, checksumWords } from '../../src/devices/models/accel_kernel.js';
import { buildColourTables, colourTransform } from '../../src/devices/models/colour_tables.js';
import { colourParams } from '../../src/devices/models/colour.js';
import { renderPattern } from '../../src/devices/models/frame_pattern.js';
import { SimdColour, renderPatternSimd } from '../../src/devices/models/simd_kernels.js';
import { fnv1aReference, fnv1aWordsReference } from '../../src/workloads/reference/checksum.js';
import { accelReference, accelTransformReference } from '../../src/workloads/reference/accel.js';
import { colourReference, colourReferenceParams } from '../../src/workloads/reference/colour.js';
import { patternReference } from '../../src/workloads/reference/frame_pattern.js';

function bytes(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (Math.imul(i + seed, 0x9e3779b1) >>> 24) & 255;
  return b;
}

t.test('checksum: one pass, NIC-sized chunks and 12-byte chunks all equal the reference, ragged ends included', async (t) => {
  for (const len of [0, 1, 3, 4, 5, 15, 16, 17, 4096, 65536 + 7, 3 * 65536 + 123]) {
    const d = bytes(len, len);
    const want = fnv1aReference(d);
    t.equal(checksum(d) | 0, want, `${len} bytes in one pass`);
    for (const chunk of [65536, 12]) {
      const s = new StreamChecksum();
      for (let o = 0; o < len; o += chunk) s.update(d.subarray(o, Math.min(len, o + chunk)));
      t.equal(s.digest() | 0, want, `${len} bytes in ${chunk}-byte chunks`);
    }
  }
});

t.test('checksum: words swapped across lanes, a zero-padded tail and one flipped bit all change it', async (t) => {
  const a = bytes(64, 1);
  const swapped = a.slice();
  swapped.set(a.subarray(0, 4), 4);
  swapped.set(a.subarray(4, 8), 0);
  t.not(checksum(swapped), checksum(a), 'words 0 and 1 (lanes 0 and 1) swapped');
  t.not(checksum(new Uint8Array([1, 2, 3])), checksum(new Uint8Array([1, 2, 3, 0])), 'length is folded in');
  const flipped = a.slice();
  flipped[37] ^= 0x10;
  t.not(checksum(flipped), checksum(a), 'one bit');
});

t.test('checksum: a chunk after a ragged one, or at an unaligned offset, is refused', async (t) => {
  const s = new StreamChecksum();
  s.update(new Uint8Array(5));
  t.throws(() => s.update(new Uint8Array(4)), /after a ragged/);
  t.throws(() => new StreamChecksum().update(new Uint8Array(8).subarray(1, 5)), /not 4-aligned/);
});

t.test('accelerator kernel: fused checksums and buffers equal the reference for word counts off the lane grid', async (t) => {
  for (const words of [1, 3, 4, 6, 1027]) {
    const ref = accelReference(words, 11, 4);
    const x = new Int32Array(words);
    const sums = [accelInit(x, 11)];
    for (let k = 1; k <= 4; k++) sums.push(accelStep(x, k, 11));
    t.same(sums, Array.from(ref.checksums), `${words} words: checksum after every iteration`);
    t.same(Array.from(x), Array.from(ref.buffer), `${words} words: buffer`);
    const fused = new Int32Array(words);
    const fusedSums = [accelInitStep(fused, 11)];
    for (let k = 2; k <= 4; k++) fusedSums.push(accelStep(fused, k, 11));
    t.same(fusedSums, Array.from(ref.checksums).slice(1), `${words} words: accelInitStep (seed + iteration 1 in one pass), then steps 2..4`);
    t.same(Array.from(fused), Array.from(ref.buffer), `${words} words: buffer after accelInitStep and steps`);
    t.equal(checksumWords(x), fnv1aWordsReference(x), `${words} words: checksumWords`);
    const a = Int32Array.from(x);
    const b = Int32Array.from(x);
    accelTransform(a, 5, 3);
    accelTransformReference(b, 5, 3);
    t.same(Array.from(a), Array.from(b), `${words} words: transform`);
  }
});

t.test('colour tables: every pixel class equals the plain formula, for matrices at the ends of their range', async (t) => {
  const matrices = [
    [300, -30, -14, -20, 290, -14, -10, -40, 306],
    [-4096, 4096, -4096, 4096, -4096, 4096, 0, 0, 0],
    [4096, 4096, 4096, -4096, -4096, -4096, 1, -1, 0],
  ];
  const inp = new Int32Array(1 << 14);
  for (let i = 0; i < inp.length; i++) inp[i] = Math.imul(i, 0x9e3779b1);
  inp[0] = 0;
  inp[1] = -1;
  for (const matrix of matrices) {
    const props = { matrix, gamma: [2.2, 0.5, 3] };
    const p = colourParams(props);
    const out = new Int32Array(inp.length);
    colourTransform(inp, out, buildColourTables(p.matrix, p.lut));
    const want = new Uint8Array(inp.length * 4);
    colourReference(new Uint8Array(inp.buffer), want, colourReferenceParams(props));
    t.same(new Uint8Array(out.buffer), want, `matrix ${matrix.join(',')}`);
  }
});

t.test('frame render in bursts that start mid-row equals the reference frame', async (t) => {
  const width = 37;
  const px = width * 11;
  const want = new Uint32Array(px);
  patternReference(want, 9, 4, width);
  const got = new Uint32Array(px);
  for (let off = 0; off < px; off += 50) renderPattern(got.subarray(off, Math.min(px, off + 50)), 9, 4, off, width);
  t.same(got, want);
});

t.test('SIMD render: 64 KiB bursts of a 1280-wide frame equal the reference; a burst off the 4-pixel grid is left to JS', async (t) => {
  const width = 1280;
  const px = width * 40;
  const want = new Uint32Array(px);
  patternReference(want, -3, 7, width);
  const got = new Uint32Array(px);
  for (let off = 0; off < px; off += 16384) t.ok(renderPatternSimd(got.subarray(off, Math.min(px, off + 16384)), -3, 7, off, width), `burst at pixel ${off} in SIMD`);
  t.same(got, want);
  t.notOk(renderPatternSimd(new Uint32Array(8), 1, 0, 2, width), 'a burst starting at pixel 2');
  t.notOk(renderPatternSimd(new Uint32Array(8), 1, 0, 0, 37), 'a 37-pixel row');
});

t.test('SIMD colour: equals the plain formula for matrices at the ends of their range, two engines interleaved', async (t) => {
  const props = [
    { matrix: [300, -30, -14, -20, 290, -14, -10, -40, 306], gamma: [2.2, 2.0, 2.4] },
    { matrix: [-4096, 4096, -4096, 4096, -4096, 4096, 0, 0, 0], gamma: [1, 0.5, 3] },
  ];
  const engines = props.map((p) => {
    const q = colourParams(p);
    return new SimdColour(q.matrix, q.lut);
  });
  const inp = new Int32Array(4099);
  for (let i = 0; i < inp.length; i++) inp[i] = Math.imul(i + 1, 0x85ebca6b);
  for (const round of [0, 1]) {
    for (const [k, e] of engines.entries()) {
      const out = new Int32Array(inp.length);
      const done = e.transform(inp, out);
      t.equal(done, 4096, 'whole groups of 4 only');
      const want = new Uint8Array(inp.length * 4);
      colourReference(new Uint8Array(inp.buffer), want, colourReferenceParams(props[k]));
      t.same(new Uint8Array(out.buffer, 0, done * 4), want.subarray(0, done * 4), `engine ${k}, round ${round}`);
    }
  }
});
