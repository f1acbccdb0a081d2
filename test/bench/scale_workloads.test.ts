// The scale.<workload>.<N> rows' bookkeeping and data checks (not their speed):
// a tiny run of bench/scale_workloads.ts with camera-chain at N = 1, 2 makes
// every row id, unit and baseline after every instance's frames passed their
// bit-exact check (the bench throws otherwise), and the modeled PCIe figures
// say P2P moves the payload through system RAM once where bounce moves it twice.
import t from 'tap';
import { RowSet } from '../../bench/stats.js';
import { scaleWorkloadRows } from '../../bench/scale_workloads.js';

t.test('scale.camera-chain rows for N = 1, 2: ids, units, baselines', async (t) => {
  const rows = new RowSet();
  rows.add('memcpy.2threads', 'MB/s', [1000]);
  await scaleWorkloadRows(rows, { kinds: ['camera-chain'], counts: [1, 2], repeats: 1 });
  const ids = rows.rows.slice(1).map((r) => `${r.id} ${r.unit} ${r.baseline}`);
  t.same(ids, [
    'scale.camera-chain.1 MB/s memcpy.2threads',
    'scale.camera-chain.1.bounce MB/s memcpy.2threads',
    'scale.camera-chain.1.pcie.bounce MB/s null',
    'scale.camera-chain.1.pcie MB/s scale.camera-chain.1.pcie.bounce',
    'scale.camera-chain.2 MB/s memcpy.2threads',
    'scale.camera-chain.2.bounce MB/s memcpy.2threads',
    'scale.camera-chain.2.pcie.bounce MB/s null',
    'scale.camera-chain.2.pcie MB/s scale.camera-chain.2.pcie.bounce',
  ]);
  for (const r of rows.rows) t.ok(r.median > 0, `${r.id} measured something`);
  const pcie = rows.rows.find((r) => r.id === 'scale.camera-chain.2.pcie')!;
  t.ok(pcie.ratio! > 1, `modeled p2p beats bounce for 2 chains (ratio ${pcie.ratio})`);
});
