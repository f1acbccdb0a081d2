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
 * Each sample is the median round trip of `iterations` calls of each row,
 * the two rows' calls alternating (pairedMediansUs).
 */
import { Machine } from '../src/devices/machine.js';
import { MirrorDriver } from '../src/drivers/mirror_driver.js';
import { Kernel } from '../src/kernel/kernel.js';
import { PAGE_SIZE } from '../src/shm/constants.js';
import { quantile, type RowSet } from './stats.js';

const MiB = 1024 * 1024;

/**
 * Samples of inval.raw and inval.idle taken side by side: each sample times
 * `n` calls of each, alternating one raw and one idle call (the order
 * flipping every pair), after a warm-up of both, so the two rows see the
 * same worker warmth, the same load on the shared cores and the same
 * cache state, and their ratio compares like with like (timed one row
 * after the other, inval.raw alone spanned 23-81 us within one run).
 * Each figure is the median of its sample's calls: on 2 cores shared with
 * other jobs a few calls wait milliseconds for the OS scheduler, and a mean
 * would measure those (the bench's min/max across samples still shows the
 * spread).
 */
async function pairedMediansUs(samples: number, n: number, raw: () => Promise<void>, idle: () => Promise<void>): Promise<{ raw: number[]; idle: number[] }> {
  const out = { raw: [] as number[], idle: [] as number[] };
  for (let i = 0; i < Math.min(50, n); i++) {
    await raw();
    await idle();
  }
  for (let k = 0; k < samples; k++) {
    const r: number[] = [];
    const d: number[] = [];
    for (let i = 0; i < n; i++) {
      const first = i % 2 === 0 ? raw : idle;
      const second = first === raw ? idle : raw;
      const t0 = performance.now();
      await first();
      const t1 = performance.now();
      await second();
      const t2 = performance.now();
      (first === raw ? r : d).push((t1 - t0) * 1000);
      (first === raw ? d : r).push((t2 - t1) * 1000);
    }
    out.raw.push(quantile(r, 0.5));
    out.idle.push(quantile(d, 0.5));
  }
  return out;
}

/** Samples per row: at least this many, whatever the suite's repeats (the pair is cheap: about 0.1 s a sample). */
const MIN_SAMPLES = 5;

export async function invalidationRows(rows: RowSet, repeats: number, iterations: number): Promise<void> {
  const machine = await Machine.create({ ramBytes: 8 * MiB, devices: [{ name: 'm0', kind: 'mirror', memBytes: 1 * MiB, barBytes: 64 * 1024, props: {} }], timeoutMs: 5000 });
  try {
    await machine.start();
    const kernel = Kernel.boot(machine, { policy: () => ({ map: 'bus-addr', distance: 2, reason: 'bench' }) });
    const mm = kernel.createMm();
    const drv = await MirrorDriver.open(kernel, 'm0', mm);
    const inv = kernel.invalidator('m0');
    const va = await mm.mmap({ length: 16 * PAGE_SIZE, prot: 3 });
    const s = await pairedMediansUs(Math.max(MIN_SAMPLES, repeats), iterations, () => inv.invalidate([{ start: va, end: va + PAGE_SIZE }]), () => mm.revokeRange(va, va + PAGE_SIZE, null));
    rows.add('inval.raw', 'us', s.raw, null, 'broadcast + ack, one idle worker (DeviceInvalidator alone), median of each sample; sampled call by call alternating with inval.idle');
    rows.add('inval.idle', 'us', s.idle, 'inval.raw', 'revokeRange through the interval notifier to one idle importer, median of each sample; sampled call by call alternating with inval.raw');
    await drv.close();
    await mm.exit();
  } finally {
    await machine.shutdown();
  }
}
