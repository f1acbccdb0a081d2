/**
 * Invalidation round trips with one idle importer: the time from posting
 * an invalidation to a device worker's invalidation slot until its ack is
 * seen on the main thread (DeviceInvalidator: Atomics.store + notify, the
 * worker wakes from Atomics.wait in its device loop, acks, main wakes from
 * its bounded Atomics.wait on the ack word). Compare with atomics.rtt, the
 * same two wakes with nothing else around them.
 *
 *   inval.raw    one range per round trip, DeviceInvalidator only
 *   inval.idle   Mm.revokeRange over a range a mirror's notifier covers:
 *                seq odd -> callback -> broadcast -> ack -> seq even
 *                (ratio to inval.raw: what the notifier path adds)
 *
 * Each sample is the median round trip of `iterations` calls.
 */
import { Machine } from '../src/devices/machine.js';
import { MirrorDriver } from '../src/drivers/mirror_driver.js';
import { Kernel } from '../src/kernel/kernel.js';
import { PAGE_SIZE } from '../src/shm/constants.js';
import { quantile, repeat, type RowSet } from './stats.js';

const MiB = 1024 * 1024;

/**
 * Median of `n` timed calls: on 2 cores shared with other jobs a few calls
 * wait milliseconds for the OS scheduler, and a mean would measure those
 * (the bench's min/max across samples still shows the spread).
 */
async function medianUs(n: number, fn: () => Promise<void>): Promise<number> {
  for (let i = 0; i < Math.min(50, n); i++) await fn(); // warm up
  const us: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await fn();
    us.push((performance.now() - t0) * 1000);
  }
  return quantile(us, 0.5);
}

export async function invalidationRows(rows: RowSet, repeats: number, iterations: number): Promise<void> {
  const machine = await Machine.create({ ramBytes: 8 * MiB, devices: [{ name: 'm0', kind: 'mirror', memBytes: 1 * MiB, barBytes: 64 * 1024, props: {} }], timeoutMs: 5000 });
  try {
    await machine.start();
    const kernel = Kernel.boot(machine, { policy: () => ({ map: 'bus-addr', distance: 2, reason: 'bench' }) });
    const mm = kernel.createMm();
    const drv = await MirrorDriver.open(kernel, 'm0', mm);
    const inv = kernel.invalidator('m0');
    const va = await mm.mmap({ length: 16 * PAGE_SIZE, prot: 3 });
    rows.add('inval.raw', 'us', await repeat(repeats, () => medianUs(iterations, () => inv.invalidate([{ start: va, end: va + PAGE_SIZE }]))), null, 'broadcast + ack, one idle worker (DeviceInvalidator alone), median of each sample');
    rows.add('inval.idle', 'us', await repeat(repeats, () => medianUs(iterations, () => mm.revokeRange(va, va + PAGE_SIZE, null))), 'inval.raw', 'revokeRange through the interval notifier to one idle importer, median of each sample');
    await drv.close();
    await mm.exit();
  } finally {
    await machine.shutdown();
  }
}
