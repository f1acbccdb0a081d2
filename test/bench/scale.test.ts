// The scale rows' bookkeeping and data checks (not their speed): a tiny run of
// bench/scale.ts with N = 1, 2 makes every row id, unit and baseline, after the
// bench verified each device's bytes and saw no safety violation (it throws
// otherwise); the DGX-style tree puts two pairs under each switch.
import t from 'tap';
import { RowSet } from '../../bench/stats.js';
import { dgxTopology, modeled, scaleRows } from '../../bench/scale.js';

t.test('scale rows for N = 1, 2: ids, units and baselines', async (t) => {
  const rows = new RowSet();
  rows.add('memcpy.2threads', 'MB/s', [1000]);
  rows.add('atomics.rtt', 'us', [20]);
  await scaleRows(rows, { counts: [1, 2], repeats: 1, streamMs: 30, span: 8 * 1024 * 1024 });
  const ids = rows.rows.slice(2).map((r) => `${r.id} ${r.unit} ${r.baseline}`);
  t.same(ids, [
    'scale.stream.1 MB/s memcpy.2threads',
    'scale.stream.1.notokens MB/s memcpy.2threads',
    'scale.stream.2 MB/s memcpy.2threads',
    'scale.stream.2.notokens MB/s memcpy.2threads',
    'scale.ack.p50.1 us atomics.rtt',
    'scale.ack.p99.1 us atomics.rtt',
    'scale.ack.p50.1.notokens us atomics.rtt',
    'scale.ack.p99.1.notokens us atomics.rtt',
    'scale.ack.p50.2 us atomics.rtt',
    'scale.ack.p99.2 us atomics.rtt',
    'scale.ack.p50.2.notokens us atomics.rtt',
    'scale.ack.p99.2.notokens us atomics.rtt',
    'scale.pcie.1.bounce MB/s null',
    'scale.pcie.1 MB/s scale.pcie.1.bounce',
    'scale.pcie.2.bounce MB/s null',
    'scale.pcie.2 MB/s scale.pcie.2.bounce',
  ]);
  for (const r of rows.rows) t.ok(r.median > 0, `${r.id} measured something`);
});

t.test('the DGX-style tree: two pairs per switch, switches alternating between two root complexes', async (t) => {
  const { spec, pairs } = dgxTopology(8);
  t.equal(pairs.length, 8);
  t.same(spec.rootComplexes.map((rc) => rc.ports.length), [2, 2], 'four switches, two under each root complex');
  const m = modeled(8);
  t.ok(m.p2p > m.bounce, 'P2P under the switches models faster than the bounce through system RAM');
});
