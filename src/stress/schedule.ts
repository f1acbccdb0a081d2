/**
 * The seeded schedule of a stress run: which kernel operation runs at each
 * step, on which buffer, page range and device, after which pause. It is a
 * pure function of (seed, options), drawn from a small PRNG, so a run is
 * replayable: the same seed gives the same operations and the same digest
 * (sha256 of the operations executed). The devices' timing is not
 * replayed; the kernel's half of the interleaving is.
 */
import { createHash } from 'node:crypto';

export type OpKind =
  | 'revoke' // BarExporter.revoke: the exporter takes a BAR buffer back (invalidate, move, free)
  | 'slot-close' // BarManager.unmapPage: one BAR slot closed (its users invalidated), reopened on demand
  | 'migrate-dev' // migrateToDevice: anonymous pages to an importer's device-private memory
  | 'migrate-ram' // migrateToSystem: device-private pages back to RAM
  | 'munmap' // the buffer is unmapped and a fresh one mapped in its place (new VA, new epoch)
  | 'mprotect' // read-only for a moment, then read-write again
  | 'dontneed' // madvise(MADV_DONTNEED): pages dropped, next touch reads zero
  | 'notifier-insert' // a passive interval notifier inserted over a range (and a readBegin on it)
  | 'notifier-remove' // one of those removed
  | 'iotlb-flush' // an IOTLB flush of a device's whole IOVA space (IOMMU on)
  | 'inv-storm' // 8 x npages single-page invalidations at once over the buffer (exporter-style, no PTE change): batching under load
  | 'slow-device'; // toggles a device between prompt and slow-but-legal acks (invLagMs 1..4 ms): widens every race window

export interface BufSpec {
  readonly kind: 'anon' | 'bar';
  readonly npages: number;
  /** Importer (index) that writes it. */
  readonly writer: number;
}

export interface Op {
  readonly step: number;
  readonly kind: OpKind;
  readonly buf: number;
  readonly page: number;
  readonly npages: number;
  /** Importer index the op targets (migration owner, IOTLB flush). */
  readonly dev: number;
  /** Pause before the op, µs. */
  readonly gapUs: number;
}

/** Relative weights of the operations, by buffer kind (policy as data). */
const WEIGHTS: Readonly<Record<BufSpec['kind'], readonly (readonly [OpKind, number])[]>> = {
  anon: [
    ['migrate-dev', 4],
    ['migrate-ram', 3],
    ['munmap', 1],
    ['mprotect', 2],
    ['dontneed', 2],
    ['notifier-insert', 1],
    ['notifier-remove', 1],
    ['iotlb-flush', 1],
    ['slow-device', 1],
    ['inv-storm', 2],
  ],
  bar: [
    ['revoke', 3],
    ['slot-close', 4],
    ['munmap', 1],
    ['notifier-insert', 1],
    ['notifier-remove', 1],
    ['slow-device', 1],
    ['inv-storm', 2],
  ],
};

/** mulberry32: a small, well-mixed 32-bit PRNG. */
export class Rng {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0 || 0x9e3779b9;
  }
  next(): number {
    let t = (this.s = (this.s + 0x6d2b79f5) | 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
}

/** The buffers of a run: per importer one anonymous (HMM) buffer and one BAR buffer it writes. */
export function bufferPlan(importers: number, anonPages = 32, barPages = 12): BufSpec[] {
  const out: BufSpec[] = [];
  for (let i = 0; i < importers; i++) out.push({ kind: 'anon', npages: anonPages, writer: i });
  for (let i = 0; i < importers; i++) out.push({ kind: 'bar', npages: barPages, writer: i });
  return out;
}

/** The operation stream of a seed; `gapMaxUs` bounds the pause before each op. */
export class Schedule {
  private readonly rng: Rng;
  private readonly hash = createHash('sha256');
  private step = 0;

  constructor(
    readonly seed: number,
    readonly bufs: readonly BufSpec[],
    readonly importers: number,
    private readonly gapMaxUs = 2000,
    /** Explicit operations (replayed in order, steps renumbered) instead of drawn ones. */
    private readonly fixed?: readonly Op[],
    /** Draw slow-device operations (legal late acks); off to measure ack latency of prompt devices. */
    private readonly slow = true,
  ) {
    this.hash.update(`peervma-stress/1 seed ${seed} importers ${importers} gap ${gapMaxUs}${slow ? '' : ' no-slow'};`);
    this.rng = new Rng(seed);
  }

  /** The next operation (deterministic in the seed and the number of calls). */
  next(): Op {
    if (this.fixed) {
      const f = this.fixed[this.step % this.fixed.length];
      return this.record({ ...f, step: this.step++ });
    }
    const r = this.rng;
    const buf = r.int(this.bufs.length);
    const b = this.bufs[buf];
    const w = this.slow ? WEIGHTS[b.kind] : WEIGHTS[b.kind].filter(([k]) => k !== 'slow-device');
    let x = r.int(w.reduce((s, [, n]) => s + n, 0));
    let kind = w[0][0];
    for (const [k, n] of w) {
      if (x < n) {
        kind = k;
        break;
      }
      x -= n;
    }
    const page = r.int(b.npages);
    const npages = 1 + r.int(Math.min(8, b.npages - page));
    return this.record({ step: this.step++, kind, buf, page, npages, dev: r.int(this.importers), gapUs: this.gapMaxUs > 0 ? r.int(this.gapMaxUs) : 0 });
  }

  private record(op: Op): Op {
    this.hash.update(`${op.step}:${op.kind}:${op.buf}:${op.page}:${op.npages}:${op.dev}:${op.gapUs};`);
    return op;
  }

  /** sha256 (first 16 hex digits) of the operations drawn so far. */
  digest(): string {
    return this.hash.copy().digest('hex').slice(0, 16);
  }

  /** The step (from `lo`, within `span`) at which a fault is injected. */
  injectStep(lo: number, span: number): number {
    return lo + new Rng(this.seed ^ 0x5bd1e995).int(Math.max(1, span));
  }
}
