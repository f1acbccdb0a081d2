// coalesce (src/kernel/invalidate_broadcast.ts) passes a range merged with
// none on as the caller's own object, makes a new one for a merge, and never
// changes the caller's ranges (they are the flushes' records, still read after
// the post: IOMMU unmap, p2p_unmap). Coverage and folding are
// safety_properties.test.ts's.
import t from 'tap';
import { coalesce } from '../../src/kernel/invalidate_broadcast.js';

const P = 4096;

t.test('unmerged ranges pass as they are; merges are new objects; inputs unchanged', async (t) => {
  const a = { start: 8 * P, end: 9 * P };
  const b = { start: 0, end: P };
  const c = { start: P, end: 3 * P }; // touches b: merged
  const d = { start: 2 * P, end: 2 * P + 1 }; // inside the merge of b and c
  const before = JSON.stringify([a, b, c, d]);
  const out = coalesce([a, c, d, b], 64);
  t.same(out, [{ start: 0, end: 3 * P }, { start: 8 * P, end: 9 * P }]);
  t.equal(out[1], a, 'a range merged with none is the caller object');
  t.not(out[0], b, 'a merge is a new object');
  t.not(out[0], c);
  t.equal(JSON.stringify([a, b, c, d]), before, 'the inputs are unchanged');
  const folded = coalesce([a, b], 1);
  t.same(folded, [{ start: 0, end: 9 * P }], 'folding over-invalidates the gap');
  t.equal(JSON.stringify([a, b]), JSON.stringify([{ start: 8 * P, end: 9 * P }, { start: 0, end: P }]), 'folding changes no input either');
});
