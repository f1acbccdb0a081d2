/**
 * The "why" under `run --compare`'s table: which mode won and what each
 * paid, from the two runs' per-stage times (sums over devices, kernel
 * stages from the kernel's own counters). It states measured figures
 * only; the stages overlap across threads, so it names what p2p saved and
 * what it paid rather than claiming they add up to the wall time.
 */
import { formatBytes } from '../common/size.js';

/** One run's figures the explanation uses. */
export interface WhyFigures {
  readonly rate: number;
  readonly computeMs: number;
  readonly dmaMs: number;
  readonly faultWaitMs: number;
  readonly mapMs: number;
  readonly invalidationMs: number;
  readonly bounceBytes: number;
  readonly refaults: number;
  /** CPU of every thread in the timed window, when the workload measured it. */
  readonly cpuMs?: number;
}

const ms = (n: number) => `${n.toFixed(1)} ms`;

/** The paragraph: the verdict, then per stage what each mode spent, then what p2p paid for its mappings. */
export function comparisonWhy(p: WhyFigures, b: WhyFigures): string {
  const r = b.rate > 0 ? p.rate / b.rate : Infinity;
  const verdict = `p2p is ${r >= 1 ? 'ahead' : 'behind'} (${r.toFixed(2)}x bounce)`;
  const dma = `device DMA ${ms(p.dmaMs)} p2p, ${ms(b.dmaMs)} bounce (bounce stages every byte in system RAM: ${formatBytes(b.bounceBytes)} of staging traffic)`;
  const compute = `device compute ${ms(p.computeMs)} p2p, ${ms(b.computeMs)} bounce`;
  const paid =
    p.faultWaitMs + p.mapMs + p.invalidationMs > 0
      ? `p2p pays for its mappings: its devices wait ${ms(p.faultWaitMs)} on page requests, the kernel maps for ${ms(p.mapMs)} and waits ${ms(p.invalidationMs)} on invalidation acks (${p.refaults} pages refaulted)`
      : 'p2p pays no fault, mapping or invalidation time';
  const cpu = p.cpuMs !== undefined && b.cpuMs !== undefined ? ` The process's threads used ${ms(p.cpuMs)} of CPU in the window for p2p, ${ms(b.cpuMs)} for bounce: on cores shared with other work the ratio follows that.` : '';
  return `Why ${verdict}, per stage (sums over devices): ${dma}; ${compute}; ${paid}.${cpu}`;
}
