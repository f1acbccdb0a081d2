/**
 * The safety checker's kernel-side reader (DESIGN.md section 6): the
 * violations device workers recorded in their SafetyLog SAB.
 *
 * What "correct" means: after invalidateRangeEnd returns, no device reads
 * or writes the old target of the range. Device TLB entries carry the page
 * generation (and page) they were made from; in check mode every DMA chunk
 * compares them with the live tables (workers/runtime/safety_check.ts). Kinds:
 *   stale-generation  the page was freed/reused since the entry was made
 *   remapped          the device address now decodes to another page
 *                     (a BAR slot was recycled, an IOVA reused)
 */
import { loadU64 } from '../shm/layout.js';
import { SafetyLog, VIOLATION_RECORDS, ViolationKind, ViolationRecord } from '../shm/tlb_layout.js';

export type ViolationName = 'stale-generation' | 'remapped';

export interface Violation {
  readonly device: string;
  readonly kind: ViolationName;
  readonly va: number;
  readonly devAddr: number;
  readonly entryGen: number;
  readonly liveGen: number;
  readonly write: boolean;
}

export function allocSafetyLog(): SharedArrayBuffer {
  return new SharedArrayBuffer(SafetyLog.kBytes);
}

/** Violations recorded so far (the last VIOLATION_RECORDS of them) and the total count. */
export function readViolations(device: string, sab: SharedArrayBuffer): { count: number; records: Violation[] } {
  const s = new Int32Array(sab);
  const count = Atomics.load(s, SafetyLog.count);
  const records: Violation[] = [];
  for (let n = Math.max(0, count - VIOLATION_RECORDS); n < count; n++) {
    const w = SafetyLog.records + (n % VIOLATION_RECORDS) * ViolationRecord.kFieldCount;
    records.push({
      device,
      kind: s[w + ViolationRecord.kind] === ViolationKind.Remapped ? 'remapped' : 'stale-generation',
      va: loadU64(s, w + ViolationRecord.va),
      devAddr: loadU64(s, w + ViolationRecord.devAddr),
      entryGen: s[w + ViolationRecord.entryGen],
      liveGen: s[w + ViolationRecord.liveGen],
      write: s[w + ViolationRecord.write] === 1,
    });
  }
  return { count, records };
}
