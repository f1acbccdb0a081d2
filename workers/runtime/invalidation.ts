/**
 * Device side of an invalidation broadcast (the importer's half of
 * mmu_interval_notifier_ops.invalidate, done in "hardware").
 *
 *   main (kernel)                         device worker
 *   -------------                         -------------
 *   write ranges, invCount                check(): seq = Atomics.load(invSeq)
 *   Atomics.store(invSeq, seq)            if seq != invAck:
 *   ringWake(ctl)                           drop translations in the ranges
 *   waitAsync(invAck != old)                Atomics.store(invAck, seq)
 *                                           Atomics.notify(invAck)
 *   [Required: after invAck == seq, no DMA of this device uses a
 *    translation of the ranges made before seq]
 *
 * check() runs at the top of each device-loop pass and between DMA chunks,
 * so latency is bounded by one chunk (DMA_CHECK_BYTES).
 */
import { DeviceCtl, DeviceStats, INV_RANGE_WORDS } from '../../src/shm/device_ctl.js';
import { loadU64 } from '../../src/shm/layout.js';

export type InvalidateHook = (start: number, end: number, seq: number) => void;

export class InvalidationPort {
  private readonly hooks: InvalidateHook[] = [];
  private readonly sleeper = new Int32Array(new SharedArrayBuffer(4));

  constructor(
    private readonly ctl: Int32Array,
    private readonly stats: Float64Array,
  ) {}

  /** Registers a translation cache (device TLB, IOTLB) to be flushed. */
  addHook(h: InvalidateHook): void {
    this.hooks.push(h);
  }

  /** Serves a pending invalidation; returns true when one was acked. */
  check(): boolean {
    const seq = Atomics.load(this.ctl, DeviceCtl.invSeq);
    if (seq === Atomics.load(this.ctl, DeviceCtl.invAck)) return false;
    const delay = Atomics.load(this.ctl, DeviceCtl.invDelayMs);
    if (delay > 0) Atomics.wait(this.sleeper, 0, 0, delay);
    if (Atomics.load(this.ctl, DeviceCtl.invIgnore) === 0) {
      const n = Atomics.load(this.ctl, DeviceCtl.invCount);
      for (let i = 0; i < n; i++) {
        const w = DeviceCtl.invRanges + i * INV_RANGE_WORDS;
        const start = loadU64(this.ctl, w);
        const end = loadU64(this.ctl, w + 2);
        for (const h of this.hooks) h(start, end, seq);
      }
    }
    this.stats[DeviceStats.invalidations]++;
    // Pairs with the waitAsync on invAck in the kernel's broadcast.
    Atomics.store(this.ctl, DeviceCtl.invAck, seq);
    Atomics.notify(this.ctl, DeviceCtl.invAck);
    return true;
  }
}
