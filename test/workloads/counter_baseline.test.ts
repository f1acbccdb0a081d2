// The invalidation counters a workload reads after its warm-up: batches and ack latencies
// counted from the snapshot (Baseline.inv), so the warm-up's acks leave the window's p99 and max.
import t from 'tap';
import type { Kernel } from '../../src/kernel/kernel.js';
import { invalidationSince, NO_BASELINE, type Baseline } from '../../src/workloads/counter_baseline.js';
import { sumInvalidations } from '../../src/workloads/accounting.js';

const stats = { nic0: { sent: 5, acked: 5, ackUs: [900, 800, 10, 20, 30] }, acc0: { sent: 2, acked: 1, ackUs: [700, 40] } };
const kernel = { invalidator: (d: 'nic0' | 'acc0') => ({ stats: stats[d] }) } as unknown as Kernel;

t.test('since a baseline: the batches and acks after it only', async (t) => {
  const base: Baseline = { ...NO_BASELINE, inv: new Map([['nic0', { sent: 2, acked: 2, acks: 2 }], ['acc0', { sent: 1, acked: 1, acks: 1 }]]) };
  const s = invalidationSince(kernel, ['nic0', 'acc0'], base);
  t.equal(s.sent, 4);
  t.equal(s.acked, 3);
  t.equal(s.maxAckUs, 40, "the warm-up's slow acks (900, 800, 700 us) are not the window's");
  t.equal(s.ackWaitMs, (10 + 20 + 30 + 40) / 1000);
});

t.test('without a baseline: every batch and ack of the run', async (t) => {
  const s = invalidationSince(kernel, ['nic0', 'acc0'], NO_BASELINE);
  t.same(s, sumInvalidations([{ stats: stats.nic0 }, { stats: stats.acc0 }]));
  t.equal(s.sent, 7);
  t.equal(s.maxAckUs, 900);
  t.equal(s.p99AckUs, 900);
});
