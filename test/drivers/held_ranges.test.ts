// HeldRanges (src/drivers/held_ranges.ts): the importer's record of the p2p
// ranges it holds, cut by every flush. Checked against a page-set model: a
// cut returns exactly the held pages of the range, per target, and nothing
// else; what stays held is what the model keeps.
import assert from 'node:assert/strict';
import t from 'tap';
import fc from 'fast-check';
import { HeldRanges } from '../../src/drivers/held_ranges.js';

const keys = [{ k: 'vma A' }, { k: 'vma B' }, { k: 'devmem C' }];

type Op = { add: true; key: number; start: number; len: number } | { add: false; start: number; len: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ add: fc.constant(true as const), key: fc.nat(keys.length - 1), start: fc.nat(200), len: fc.integer({ min: 1, max: 40 }) }),
  fc.record({ add: fc.constant(false as const), start: fc.nat(220), len: fc.integer({ min: 1, max: 30 }) }),
);

/** Pages of the parts, per target name, sorted. */
function pagesOf(parts: readonly { value: string; start: number; end: number }[]): Record<string, number[]> {
  const out: Record<string, number[]> = {};
  for (const p of parts) {
    assert.ok(p.start < p.end, 'a part is never empty');
    for (let v = p.start; v < p.end; v++) (out[p.value] ??= []).push(v);
  }
  for (const k of Object.keys(out)) out[k].sort((a, b) => a - b);
  return out;
}

// Chunks of 1 and 2 ranges put chunk edges everywhere; 64 is the default.
for (const chunkPairs of [64, 1, 2]) t.test(`cuts return exactly the held pages of the range, per target (chunks of ${chunkPairs} ranges)`, async (t) => {
  fc.assert(
    fc.property(fc.array(opArb, { maxLength: chunkPairs === 64 ? 60 : 120 }), (ops) => {
      const h = new HeldRanges<string>(chunkPairs);
      const model = new Map<string, Set<number>>(keys.map((k) => [k.k, new Set<number>()]));
      for (const op of ops) {
        if (op.add) {
          const key = keys[op.key];
          h.add(key, key.k, op.start, op.start + op.len);
          for (let v = op.start; v < op.start + op.len; v++) model.get(key.k)!.add(v);
          continue;
        }
        // Every third cut is a cut(): no parts returned, the same pages gone (checked by what follows).
        if (op.len % 3 === 0) {
          h.cut(op.start, op.start + op.len);
          for (const set of model.values()) for (let v = op.start; v < op.start + op.len; v++) set.delete(v);
          continue;
        }
        const got = pagesOf(h.take(op.start, op.start + op.len));
        const want: Record<string, number[]> = {};
        for (const [k, set] of model) {
          for (let v = op.start; v < op.start + op.len; v++) {
            if (set.delete(v)) (want[k] ??= []).push(v);
          }
        }
        assert.deepEqual(got, want);
      }
      // Whatever is left comes back in one cut of everything, merged: one part per maximal run.
      const rest = h.take(0, 1e9);
      assert.deepEqual(pagesOf(rest), Object.fromEntries([...model].filter(([, s]) => s.size > 0).map(([k, s]) => [k, [...s].sort((a, b) => a - b)])));
      for (const k of keys) {
        const mine = rest.filter((p) => p.value === k.k).sort((a, b) => a.start - b.start);
        for (let i = 1; i < mine.length; i++) assert.ok(mine[i - 1].end < mine[i].start, 'ranges of one target neither overlap nor touch');
      }
      assert.equal(h.size, 0);
      assert.equal(h.chunkCount, 0, 'no empty chunk is left behind');
    }),
    { numRuns: 200 },
  );
  t.pass('200 random sequences of adds and cuts agree with the page-set model');
});

t.test('a storm of single-page cuts of one large range', async (t) => {
  const h = new HeldRanges<string>();
  const key = {};
  h.add(key, 'vma', 0, 32768);
  let cuts = 0;
  for (let v = 1; v < 32768; v += 2) cuts += h.take(v, v + 1).length;
  t.equal(cuts, 16384, 'every cut took its one page');
  t.equal(h.size, 16384, 'every other page still held, each its own range');
  t.ok(h.chunkCount >= 16384 / 128 && h.chunkCount <= 16384 / 64, `kept in chunks of 64 to 128 ranges (${h.chunkCount} chunks)`);
  h.add(key, 'vma', 0, 32768);
  t.equal(h.size, 1, 'refaulting the whole range merges it back into one');
  t.equal(h.chunkCount, 1);
  t.same(h.take(100, 200), [{ value: 'vma', start: 100, end: 200 }]);
  t.equal(h.size, 2);
});
