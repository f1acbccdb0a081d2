/**
 * What the three accelerator workloads (accel-progress, accel-nic-stream,
 * hmm-peer) share: reading the invalidation counters of the kernel's
 * per-device invalidators, the NIC's device-TLB counters, and the
 * accounting of which traffic staged data in system RAM.
 *
 * Counting rule for bounceBytes (src/workloads/workload.ts): the bytes the
 * producing device wrote to RAM only so that the consuming device could
 * read them, plus the bytes the consumer read back — two copies per
 * bounced byte; a p2p run has none.
 */
import type { Kernel } from '../kernel/kernel.js';
import type { Device, Machine } from '../devices/machine.js';
import { p99 } from './accounting.js';
import { deviceCounters } from './command_runner.js';
import type { InvalidationStats } from './workload.js';

/** The per-device invalidator's statistics (src/kernel/invalidate_broadcast.ts). */
interface InvalidatorStats {
  readonly sent: number;
  readonly acked: number;
  readonly ackUs: readonly number[];
}

/** Invalidation batches sent to and acked by `devices`, with the ack latencies, since boot. */
export function invalidationStats(kernel: Kernel, devices: readonly string[]): InvalidationStats {
  let sent = 0;
  let acked = 0;
  const ackUs: number[] = [];
  for (const name of devices) {
    const inv = kernel.invalidator(name) as unknown as { stats?: InvalidatorStats; roundTrips: number };
    if (inv.stats) {
      sent += inv.stats.sent;
      acked += inv.stats.acked;
      ackUs.push(...inv.stats.ackUs);
    } else {
      sent += inv.roundTrips;
      acked += inv.roundTrips;
    }
  }
  return { sent, acked, maxAckUs: ackUs.reduce((m, x) => Math.max(m, x), 0), p99AckUs: p99(ackUs) };
}

/** Device-TLB counters of a bound device (workers/runtime/va_space.ts, 'va-counters'). */
export interface VaCounters {
  readonly faults: number;
  readonly pagesFaulted: number;
  readonly retries: number;
  /** Runs redone because an invalidation hit them mid-transfer. */
  readonly refaults: number;
  readonly tlb: number;
}

export function vaCounters(machine: Machine, dev: Device): Promise<VaCounters> {
  return deviceCounters<VaCounters>(machine, dev, 'va-counters').then((c) => ({ faults: c.faults ?? 0, pagesFaulted: c.pagesFaulted ?? 0, retries: c.retries ?? 0, refaults: c.refaults ?? 0, tlb: c.tlb ?? 0 }));
}

/** Mean of a non-empty sample. */
export function mean(xs: readonly number[]): number {
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}
