// Per-kind violation counts in a stress report: printed most first, zero
// kinds left out, summed over the seeds of a sweep (a shard file written
// before the counts existed is totalled under "uncounted", and does not throw).
import t from 'tap';
import { formatKinds, formatRun, type StressReport } from '../../src/stress/report.js';
import { failedRun, inSeedOrder, totalsOf } from '../../src/stress/sweep.js';

const base = { importers: 2, iommu: false, ops: 0 };

t.test('formatKinds: most first, ties by name, zeros left out', async (t) => {
  t.equal(formatKinds({ 'shadow/corrupt': 1, 'payload/corrupt-data': 140, 'payload/stale-data': 1, 'kernel/ack-timeout': 0 }), 'payload/corrupt-data 140, payload/stale-data 1, shadow/corrupt 1');
  t.equal(formatKinds({}), '');
});

t.test('formatRun prints the counts per kind next to the total', async (t) => {
  const r: StressReport = { ...failedRun(3, base, 'boom'), violationCount: 5, violationKinds: { 'payload/stale-data': 2, 'protocol/run-failed': 3 } };
  t.match(formatRun(r), /violations 5 \(protocol\/run-failed 3, payload\/stale-data 2\)/);
  t.notMatch(formatRun({ ...r, violationCount: 0, violationKinds: {} }), /violations 0 \(/);
});

t.test('totalsOf sums the kinds over the seeds', async (t) => {
  const a: StressReport = { ...failedRun(1, base, 'x'), violationKinds: { 'payload/stale-data': 2, 'protocol/run-failed': 1 } };
  const b = failedRun(2, base, 'y');
  const { violationKinds: _, ...old } = failedRun(4, base, 'z');
  // The old shard's violation has no kind: totalled under a name that says so, so the kinds still add up to the total.
  t.same(totalsOf([a, b, old as StressReport]).violationKinds, { 'payload/stale-data': 2, 'protocol/run-failed': 2, 'uncounted/shard-without-kinds': 1 });
});

t.test('formatRun wraps every line to the columns it is given, continuations indented under it', async (t) => {
  const long = 'read of va 0x7f00000be000 through device address 0x141018000 '.repeat(3).trim();
  const r: StressReport = { ...failedRun(3, base, long), violationCount: 5, violationKinds: { 'payload/stale-data': 2, 'protocol/run-failed': 3 } };
  for (const cols of [60, 80, 100]) {
    const lines = formatRun(r, cols).split('\n');
    for (const l of lines) t.ok(l.length <= cols, `${l.length} <= ${cols}: ${l}`);
    const v = lines.findIndex((l) => l.startsWith('  VIOLATION '));
    t.ok(v > 0 && lines[v + 1].startsWith('    '), 'the violation continues on an indented line');
  }
  t.match(formatRun(r, 100).replace(/\n +/g, ' '), long, 'nothing is lost in the wrapping');
});

t.test('inSeedOrder: a sweep prints its lines in seed order, whatever order the seeds finish in', async (t) => {
  const out: number[] = [];
  const emit = inSeedOrder([1, 2, 3, 4], (r) => out.push(r.seed));
  const seen: number[][] = [];
  for (const seed of [1, 3, 2, 4]) {
    emit(failedRun(seed, base, 'x'));
    seen.push([...out]);
  }
  t.same(seen, [[1], [1], [1, 2, 3], [1, 2, 3, 4]], 'seed 3 waits for seed 2, then both go out');
});
