/**
 * Invalidation round trip with one idle importer (issue 5): the time from
 * posting an invalidation to a device worker's invalidation slot until its
 * ack is seen on the main thread (DeviceInvalidator: Atomics.store +
 * notify, worker wakes from Atomics.wait in its device loop, acks, main's
 * waitAsync resolves). Printed by bench/run.ts beside the Atomics
 * ping-pong baseline.
 *
 * Rows:
 *   raw broadcast        one range per round trip, DeviceInvalidator only
 *   notifier path        Mm.revokeRange over a range a mirror notifier
 *                        covers: seq odd -> callback -> broadcast -> ack ->
 *                        seq even
 *   batched x8           eight ranges in one broadcast (per-range cost)
 */
import { Machine } from '../src/devices/machine.js';
import { MirrorDriver } from '../src/drivers/mirror_driver.js';
import { Kernel } from '../src/kernel/kernel.js';
import { PAGE_SIZE } from '../src/shm/constants.js';

export interface InvalidationBenchRow {
  name: string;
  roundTripUs: number;
  p50Us: number;
  p99Us: number;
  iterations: number;
}

const MiB = 1024 * 1024;

function stats(name: string, samples: number[], per = 1): InvalidationBenchRow {
  const s = samples.map((x) => (x * 1000) / per).sort((a, b) => a - b);
  const mean = s.reduce((a, b) => a + b, 0) / s.length;
  const q = (p: number) => s[Math.min(s.length - 1, Math.floor(p * s.length))];
  const r = (x: number) => Math.round(x * 10) / 10;
  return { name, roundTripUs: r(mean), p50Us: r(q(0.5)), p99Us: r(q(0.99)), iterations: s.length };
}

async function time(n: number, fn: () => Promise<void>): Promise<number[]> {
  for (let i = 0; i < Math.min(50, n); i++) await fn(); // warm up
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await fn();
    out.push(performance.now() - t0);
  }
  return out;
}

export async function benchInvalidation(iterations = 500): Promise<InvalidationBenchRow[]> {
  const machine = await Machine.create({ ramBytes: 8 * MiB, devices: [{ name: 'm0', kind: 'mirror', memBytes: 1 * MiB, barBytes: 64 * 1024, props: {} }], timeoutMs: 5000 });
  try {
    await machine.start();
    const kernel = Kernel.boot(machine);
    const mm = kernel.createMm();
    const drv = await MirrorDriver.open(kernel, 'm0', mm);
    const inv = kernel.invalidator('m0');
    const va = await mm.mmap({ length: 16 * PAGE_SIZE, prot: 3 });
    const rows: InvalidationBenchRow[] = [];
    rows.push(stats('invalidation round trip, raw broadcast, 1 idle importer', await time(iterations, () => inv.invalidate([{ start: va, end: va + PAGE_SIZE }]))));
    rows.push(stats('invalidation round trip, notifier path (revokeRange), 1 idle importer', await time(iterations, () => mm.revokeRange(va, va + PAGE_SIZE, null))));
    const eight = Array.from({ length: 8 }, (_, i) => ({ start: va + 2 * i * PAGE_SIZE, end: va + (2 * i + 1) * PAGE_SIZE }));
    rows.push(stats('invalidation per range, batched x8 in one broadcast', await time(iterations, () => inv.invalidate(eight)), 8));
    await drv.close();
    await mm.exit();
    return rows;
  } finally {
    await machine.shutdown();
  }
}

// Run directly: node dist/bench/invalidation.js
if (import.meta.url === `file://${process.argv[1]}`) {
  benchInvalidation().then((rows) => console.table(rows));
}
