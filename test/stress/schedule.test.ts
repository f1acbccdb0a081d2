// The stress schedule is replayable: the same seed gives the same operations
// and digest, another seed another digest; explicit schedules replay as given.
import t from 'tap';
import { bufferPlan, Schedule } from '../../src/stress/schedule.js';

const draw = (seed: number, n: number) => {
  const s = new Schedule(seed, bufferPlan(4), 4);
  const ops = Array.from({ length: n }, () => s.next());
  return { ops, digest: s.digest() };
};

t.test('same seed, same operations and digest; another seed differs', async (t) => {
  const a = draw(42, 300);
  const b = draw(42, 300);
  t.same(a.ops, b.ops);
  t.equal(a.digest, b.digest);
  t.not(draw(43, 300).digest, a.digest);
  t.not(draw(42, 299).digest, a.digest, 'the digest covers the operations executed');
  const kinds = new Set(a.ops.map((o) => o.kind));
  t.ok(kinds.size >= 8, `the schedule mixes operations (${[...kinds].join(', ')})`);
  const bad = a.ops.filter((o) => {
    const b = bufferPlan(4)[o.buf];
    if (o.page + o.npages > b.npages) return true;
    if ((o.kind === 'revoke' || o.kind === 'slot-close') && b.kind !== 'bar') return true;
    return (o.kind === 'migrate-dev' || o.kind === 'dontneed' || o.kind === 'mprotect') && b.kind !== 'anon';
  });
  t.same(bad, [], 'every operation fits its buffer and its buffer kind');
});

t.test('an explicit schedule replays as given, steps renumbered', async (t) => {
  const ops = draw(7, 5).ops.reverse();
  const s = new Schedule(0, bufferPlan(4), 4, 2000, ops);
  const out = ops.map(() => s.next());
  t.same(out.map((o) => o.kind), ops.map((o) => o.kind));
  t.same(out.map((o) => o.step), [0, 1, 2, 3, 4]);
});
