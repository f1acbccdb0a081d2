/**
 * What a stress run reports (the JSON of one run, one line of a sweep) and
 * how it is printed. Pure data and formatting.
 */
import { paragraph } from '../common/text_wrap.js';

export type InjectKind = 'rogue' | 'late' | 'crash' | 'hang';

/** One breach of the safety invariant, named the way a person needs to find it. */
export interface StressViolation {
  /** Who saw it: the device-side generation checker, the device's payload check, the kernel, the protocol checks, the end-of-run shadow compare. */
  readonly source: 'checker' | 'payload' | 'kernel' | 'protocol' | 'shadow';
  readonly kind: string;
  readonly device: string;
  /** Buffer (job table row) and page within it, when known. */
  readonly buf: number | null;
  readonly page: number | null;
  readonly generation: string | null;
  /** Schedule step (and its operation) at or just before which it was seen. */
  readonly step: number;
  readonly op: string;
  readonly detail: string;
}

export interface InjectOutcome {
  readonly kind: InjectKind;
  readonly device: string;
  readonly step: number;
  /** caught: reported as violations (IOMMU off); contained: blocked (IOMMU faults, fenced); torn-down: crash handled; missed: nothing happened. */
  readonly outcome: 'caught' | 'contained' | 'torn-down' | 'missed';
  readonly expected: 'caught' | 'contained' | 'torn-down';
  /** Where it showed: during the schedule, or only to the probe after it (the device spent the schedule parked, e.g. on a page request). */
  readonly shownBy: 'schedule' | 'probe';
  readonly detail: string;
}

export interface StressReport {
  readonly seed: number;
  readonly schedule: string;
  readonly iommu: boolean;
  readonly importers: number;
  readonly gapMaxUs: number;
  /** Slow-device operations drawn (legal late acks that widen race windows). */
  readonly slow: boolean;
  readonly ops: number;
  readonly opsFailed: number;
  /** Invalidation batches posted to devices, and the ranges they carried. */
  readonly invalidations: number;
  readonly ranges: number;
  readonly wallMs: number;
  readonly rangesPerSec: number;
  readonly pagesRead: number;
  readonly pagesWritten: number;
  readonly ioErrors: number;
  readonly iommuFaults: number;
  readonly ackUs: { readonly p50: number; readonly p99: number; readonly max: number; readonly n: number };
  /** Atomics round trip to an idle device of the same machine (p50, µs), measured before streaming. */
  readonly roundTripUs: number;
  readonly violations: readonly StressViolation[];
  readonly violationCount: number;
  /** Exact count per 'source/kind' (sums to violationCount), also of violations not listed or overwritten in a device's ring. */
  readonly violationKinds: Readonly<Record<string, number>>;
  /** Exact count per device (sums to violationCount; '-' for the protocol's own checks). Absent in shards of older builds. */
  readonly violationDevices?: Readonly<Record<string, number>>;
  readonly injected: readonly InjectOutcome[];
  readonly exitCode: 0 | 1;
}

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

const f1 = (n: number): string => n.toFixed(1);

/** One line per seed (fits 100 columns). */
export function formatRunLine(r: StressReport): string {
  return `seed ${String(r.seed).padEnd(6)} ${r.schedule}  ops ${String(r.ops).padStart(5)}  inv ${String(r.invalidations).padStart(7)}  viol ${String(r.violationCount).padStart(3)}  iommu-f ${String(r.iommuFaults).padStart(3)}  ack p50/p99/max ${f1(r.ackUs.p50)}/${f1(r.ackUs.p99)}/${f1(r.ackUs.max)} us`;
}

/** 'payload/stale-data 3, shadow/corrupt 1': counts per kind, most first. */
export function formatKinds(kinds: Readonly<Record<string, number>>): string {
  return Object.entries(kinds)
    .filter(([, n]) => n > 0)
    .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
    .map(([k, n]) => `${k} ${n}`)
    .join(', ');
}

/** The full report of one run, for a person: every line wrapped to `cols`, continuations indented under it. */
export function formatRun(r: StressReport, cols = 100): string {
  const out = [
    `peervma stress: seed ${r.seed}, schedule ${r.schedule}, ${r.importers} importers, IOMMU ${r.iommu ? 'on' : 'off'}`,
    `  ops ${r.ops} (${r.opsFailed} refused or aborted), invalidations ${r.invalidations} batches / ${r.ranges} ranges in ${(r.wallMs / 1000).toFixed(1)} s (${Math.round(r.rangesPerSec)} ranges/s)`,
    `  device traffic: ${r.pagesRead} pages read, ${r.pagesWritten} written, ${r.ioErrors} transfers refused (unmapped, read-only, fenced)`,
    `  ack latency p50 ${f1(r.ackUs.p50)} us, p99 ${f1(r.ackUs.p99)} us, max ${f1(r.ackUs.max)} us over ${r.ackUs.n} acks; Atomics round trip ${f1(r.roundTripUs)} us`,
    `  IOMMU faults ${r.iommuFaults}; violations ${r.violationCount}${r.violationCount > 0 ? ` (${formatKinds(r.violationKinds)})` : ''}`,
  ];
  for (const v of r.violations.slice(0, 20)) {
    out.push(`  VIOLATION ${v.source}/${v.kind}: device ${v.device}, buffer ${v.buf ?? '-'} page ${v.page ?? '-'}, generation ${v.generation ?? '-'}, step ${v.step} (${v.op}): ${v.detail}`);
  }
  if (r.violations.length > 20) out.push(`  ... ${r.violationCount - 20} more (--json lists up to 200)`);
  for (const i of r.injected) out.push(`  injected ${i.kind} on ${i.device} at step ${i.step}: ${i.outcome} (expected ${i.expected}) — ${i.detail}`);
  out.push(`  exit ${r.exitCode}; replay: peervma stress --seed ${r.seed} --ops ${r.ops} --importers ${r.importers} --iommu ${r.iommu ? 'on' : 'off'}${r.gapMaxUs !== 2000 ? ` --gap-us ${r.gapMaxUs}` : ''}${r.slow ? '' : ' --slow off'}${r.injected.length ? ` --inject ${r.injected[0].kind}` : ''}`);
  return out.map((l) => indented(l, cols)).join('\n');
}

/** `line` wrapped to `cols`; its continuations indented two spaces past the line's own indent. */
function indented(line: string, cols: number): string {
  const lead = /^ */.exec(line)![0].length;
  return paragraph(line.slice(lead), cols, lead, lead + 2);
}
