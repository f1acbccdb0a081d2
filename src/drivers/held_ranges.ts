/**
 * The VA ranges an importer holds p2p mappings of, per target (an
 * exporter's VMA or a peer's device memory): what each invalidation must
 * cut out and hand back for p2p_unmap after the ack
 * (ImporterBinding.flushLocked), and what each fault adds
 * (ImporterBinding.recordHeld).
 *
 * Invariants: per target, ranges are sorted by start, non-empty, and
 * neither overlap nor touch (add merges them), so both add and take find
 * their place by binary search: a revoke storm that cuts a large held
 * range into thousands of pieces costs O(log n) per cut plus the pieces
 * it touches, not a walk of the whole list (issue 11: the walk with a new
 * object per entry made each revoke O(held) and bounded inval.batched).
 * Ranges of different targets may overlap (a stale record of a fault that
 * lost a race is kept until a flush covers it): each target is searched.
 *
 * Threading: main thread only, under the importer's driver lock.
 */

export interface HeldPart<V> {
  readonly value: V;
  readonly start: number;
  readonly end: number;
}

interface Target<V> {
  readonly value: V;
  /** Flat [start0, end0, start1, end1, ...], sorted, disjoint, not touching. */
  readonly r: number[];
}

export class HeldRanges<V> {
  private readonly targets = new Map<object, Target<V>>();

  /** Adds [start, end) for `key` (whose value is `value`), merged with the ranges of the same key it overlaps or touches. */
  add(key: object, value: V, start: number, end: number): void {
    if (end <= start) return;
    let t = this.targets.get(key);
    if (!t) {
      t = { value, r: [] };
      this.targets.set(key, t);
    }
    const r = t.r;
    // First range whose end reaches start (touching counts), and first whose start lies past end.
    const i = firstEndAtLeast(r, start);
    let j = i;
    while (j < r.length / 2 && r[2 * j] <= end) j++;
    if (j > i) {
      start = Math.min(start, r[2 * i]);
      end = Math.max(end, r[2 * j - 1]);
    }
    r.splice(2 * i, 2 * (j - i), start, end);
  }

  /** Cuts [start, end) out of every target's ranges; returns the parts cut. */
  take(start: number, end: number): HeldPart<V>[] {
    const out: HeldPart<V>[] = [];
    for (const [key, t] of this.targets) {
      const r = t.r;
      // First range that ends after start (a range ending at start is not cut).
      const i = firstEndAtLeast(r, start + 1);
      let j = i;
      while (j < r.length / 2 && r[2 * j] < end) j++;
      if (j === i) continue;
      const keep: number[] = [];
      for (let k = i; k < j; k++) {
        const s = r[2 * k];
        const e = r[2 * k + 1];
        out.push({ value: t.value, start: Math.max(s, start), end: Math.min(e, end) });
        if (s < start) keep.push(s, start);
        if (end < e) keep.push(end, e);
      }
      r.splice(2 * i, 2 * (j - i), ...keep);
      if (r.length === 0) this.targets.delete(key);
    }
    return out;
  }

  /** Does any target's range intersect [start, end)? */
  overlaps(start: number, end: number): boolean {
    for (const t of this.targets.values()) {
      const i = firstEndAtLeast(t.r, start + 1);
      if (i < t.r.length / 2 && t.r[2 * i] < end) return true;
    }
    return false;
  }

  /** Ranges held, over every target (statistics and tests). */
  get size(): number {
    let n = 0;
    for (const t of this.targets.values()) n += t.r.length / 2;
    return n;
  }
}

/** Index of the first range (in pairs) whose end is >= x; the count when none. */
function firstEndAtLeast(r: readonly number[], x: number): number {
  let lo = 0;
  let hi = r.length / 2;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (r[2 * mid + 1] >= x) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}
