/**
 * The BAR slot owner an exporter (BarExporter, DevMem) makes per
 * (importer, process), for BarManager: its revoke is the process's
 * revokeRange (mmu_notifier invalidation of the VA run, acks awaited) on
 * behalf of the exporter.
 *
 * Invariant: one object per (importer, process) key for the exporter's
 * life; BarManager.release finds the owner's holds by that key.
 */
import type { SlotOwner } from './bar_manager.js';
import type { MmRef } from './kernel_types.js';

/**
 * A class, not an object with a closure per owner: BarManager.evictLocked
 * calls revoke on owners made in different runs, and a new closure there
 * was a new call target that sent evictLocked back to the compiler inside
 * a run's timed window (--trace-deopt: "wrong call target", every run).
 */
export class MmSlotOwner implements SlotOwner {
  constructor(
    readonly key: string,
    private readonly mm: MmRef,
    private readonly exporter: unknown,
  ) {}

  revoke(start: number, end: number): Promise<void> {
    return this.mm.revokeRange(start, end, this.exporter);
  }
}
