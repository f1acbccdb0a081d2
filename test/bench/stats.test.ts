// peervma bench's bookkeeping (not its speed): median/min/max, ratios taken
// against a baseline row of the same run, the table within 100 columns,
// and the command's refusal of unknown suites and sections.
import t from 'tap';
import { quantile, RowSet, summarise } from '../../bench/stats.js';
import { formatTable } from '../../bench/suite.js';
import { main } from '../../src/cli/main.js';

t.test('summarise: median of odd and even samples, min, max', async (t) => {
  t.same(summarise([3, 1, 2]), { median: 2, min: 1, max: 3, n: 3 });
  t.same(summarise([4, 1, 3, 2]), { median: 2.5, min: 1, max: 4, n: 4 });
  t.throws(() => summarise([]), /no samples/);
  t.equal(quantile([5, 1, 4, 2, 3], 0.5), 3);
  t.equal(quantile([5, 1, 4, 2, 3], 0.99), 5);
});

t.test('a row\'s ratio is its median over its baseline\'s median; a missing baseline is an error', async (t) => {
  const rows = new RowSet();
  rows.add('memcpy.dram', 'MB/s', [1000, 2000, 4000]);
  const r = rows.add('dma.p2p.contig', 'MB/s', [900, 1800, 1000], 'memcpy.dram');
  t.equal(r.baseline, 'memcpy.dram');
  t.equal(r.ratio, 1000 / 2000);
  t.equal(rows.get('memcpy.dram').ratio, null);
  t.throws(() => rows.add('dma.bounce', 'MB/s', [1], 'memcpy.nothing'), /not measured before/);
});

t.test('the table fits in 100 columns and names each row\'s baseline', async (t) => {
  const rows = new RowSet();
  rows.add('scenario.camera-chain-iommu.bounce', 'MB/s', [20, 21, 22]);
  rows.add('scenario.camera-chain-iommu', 'MB/s', [30, 31, 33], 'scenario.camera-chain-iommu.bounce');
  const out = formatTable({ machine: { suite: 'quick', repeats: 3, seconds: 1, cpus: 2, node: 'v20', loadAvgAtStart: [1, 1, 1], loadAvgAtEnd: [1, 1, 1] }, rows: rows.rows });
  for (const line of out.split('\n')) t.ok(line.length <= 100, `${line.length} columns: ${line.slice(0, 40)}`);
  t.match(out, /quick suite, 3 runs per row, [^]*\nOther run counts are in the row's --json note: scenario rows \(3\+ pairs\), boot\.256, boot\.rss\*\./, 'the footer names the rows that ran another number of times');
  t.match(out, /scenario\.camera-chain-iommu\s+MB\/s\s+31\.0\s+30\.0\s+33\.0\s+1\.476\s+\.bounce/);
});

t.test('a large ratio fits its column: every row\'s baseline starts in the same column', async (t) => {
  const rows = new RowSet();
  rows.add('atomics.rtt', 'us', [0.05, 0.05, 0.05]);
  rows.add('inval.streaming.p99.same', 'us', [81.9656, 81.9656, 81.9656], 'atomics.rtt');
  rows.add('inval.streaming.p50.same', 'us', [6, 6, 6], 'atomics.rtt');
  rows.add('inval.streaming.p90.same', 'us', [12, 12, 12], 'atomics.rtt');
  const out = formatTable({ machine: { suite: 'quick', repeats: 3, seconds: 1, cpus: 2, node: 'v20', loadAvgAtStart: [1, 1, 1], loadAvgAtEnd: [1, 1, 1] }, rows: rows.rows });
  for (const line of out.split('\n')) t.ok([...line].length <= 100, `${[...line].length} columns: ${line.slice(0, 40)}`);
  const starts = out.split('\n').filter((l) => l.startsWith('inval.')).map((l) => l.indexOf('atomics.rtt'));
  t.same(starts, [starts[0], starts[0], starts[0]], `baselines at column ${starts[0]}`);
  t.match(out, /inval\.streaming\.p99\.same\s+us\s+82\.0\s+82\.0\s+82\.0\s+1639\s+atomics\.rtt/);
  t.match(out, /inval\.streaming\.p90\.same\s+us\s+12\.0\s+12\.0\s+12\.0\s+240\.0\s+atomics\.rtt/);
});

t.test('bad suite or section: usage error, exit 2, nothing runs', async (t) => {
  const err: string[] = [];
  const w = process.stderr.write.bind(process.stderr);
  process.stderr.write = ((s: string) => (err.push(String(s)), true)) as typeof process.stderr.write;
  try {
    t.equal(await main(['bench', '--suite', 'huge']), 2);
    t.equal(await main(['bench', '--only', 'dma,nope']), 2);
  } finally {
    process.stderr.write = w;
  }
  t.match(err.join(''), /--suite must be quick or full, got 'huge'/);
  t.match(err.join(''), /unknown: nope/);
});
