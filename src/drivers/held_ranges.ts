/**
 * The VA ranges an importer holds p2p mappings of, per target (an
 * exporter's VMA or a peer's device memory): what each invalidation must
 * cut out and hand back for p2p_unmap after the ack
 * (ImporterBinding.flushLocked), and what each fault adds
 * (ImporterBinding.recordHeld).
 *
 * Invariants: per target, ranges are sorted by start, non-empty, and
 * neither overlap nor touch (add merges them), so both add and take find
 * their place by binary search. They are kept in chunks of at most
 * 2 * chunkPairs ranges (flat [start0, end0, start1, end1, ...] arrays,
 * none empty, in order), so a cut or a merge moves the entries of one
 * chunk, not of the whole list: a revoke storm that cuts a large held
 * range into thousands of pieces costs O(log n) per cut plus the pieces
 * it touches (issue 11: first a walk with a new object per entry, then a
 * splice of one flat array per cut, ~12% of main's time per 64-range
 * round of inval.batched, bounded it).
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
  readonly key: object;
  readonly value: V;
  /** Chunks of flat [start, end) pairs, in order; none empty. */
  readonly chunks: number[][];
}

/** A position among a target's ranges: range k (in pairs) of chunk c; c = chunks.length past the last. */
interface Cursor {
  c: number;
  k: number;
}

/** Ranges a chunk keeps when it is split; it is split once it holds more than twice this many. */
const CHUNK_PAIRS = 64;

export class HeldRanges<V> {
  private readonly targets = new Map<object, Target<V>>();
  /** Reused by add and take (main thread only, not reentrant). */
  private readonly at: Cursor = { c: 0, k: 0 };
  private readonly to: Cursor = { c: 0, k: 0 };

  /** `chunkPairs`: ranges a chunk keeps when split (at most twice this many before; tests make it small to cross chunk edges often). */
  constructor(private readonly chunkPairs = CHUNK_PAIRS) {}

  /** Adds [start, end) for `key` (whose value is `value`), merged with the ranges of the same key it overlaps or touches. */
  add(key: object, value: V, start: number, end: number): void {
    if (end <= start) return;
    let t = this.targets.get(key);
    if (!t) {
      t = { key, value, chunks: [] };
      this.targets.set(key, t);
    }
    const ch = t.chunks;
    // From the first range whose end reaches start (touching counts) to the first whose start lies past end.
    const at = locate(ch, start, this.at);
    const to = this.to;
    to.c = at.c;
    to.k = at.k;
    let first = true;
    while (to.c < ch.length && ch[to.c][2 * to.k] <= end) {
      if (first) start = Math.min(start, ch[to.c][2 * to.k]);
      first = false;
      end = Math.max(end, ch[to.c][2 * to.k + 1]);
      step(ch, to);
    }
    replace(ch, at, to, start, end, NaN, NaN, this.chunkPairs);
  }

  /** Cuts [start, end) out of every target's ranges; returns the parts cut. */
  take(start: number, end: number): HeldPart<V>[] {
    const out: HeldPart<V>[] = [];
    this.cut(start, end, out);
    return out;
  }

  /** Cuts [start, end) out of every target's ranges; the parts cut go to `out` when given. */
  cut(start: number, end: number, out: HeldPart<V>[] | null = null): void {
    for (const t of this.targets.values()) {
      const ch = t.chunks;
      // First range that ends after start (a range ending at start is not cut).
      const at = locate(ch, start + 1, this.at);
      const to = this.to;
      to.c = at.c;
      to.k = at.k;
      // What stays of the first and the last range cut (NaN: nothing).
      let l0 = NaN;
      let r0 = NaN;
      let r1 = NaN;
      while (to.c < ch.length && ch[to.c][2 * to.k] < end) {
        const s = ch[to.c][2 * to.k];
        const e = ch[to.c][2 * to.k + 1];
        out?.push({ value: t.value, start: Math.max(s, start), end: Math.min(e, end) });
        if (s < start) l0 = s;
        if (end < e) {
          r0 = end;
          r1 = e;
        }
        step(ch, to);
      }
      if (to.c === at.c && to.k === at.k) continue;
      if (!Number.isNaN(l0)) {
        // The left piece first, then the right one (NaN when none).
        replace(ch, at, to, l0, start, r0, r1, this.chunkPairs);
      } else replace(ch, at, to, r0, r1, NaN, NaN, this.chunkPairs);
      // Deleting the entry being visited is safe in a Map iteration.
      if (ch.length === 0) this.targets.delete(t.key);
    }
  }

  /** Does any target's range intersect [start, end)? */
  overlaps(start: number, end: number): boolean {
    for (const t of this.targets.values()) {
      const at = locate(t.chunks, start + 1, this.at);
      if (at.c < t.chunks.length && t.chunks[at.c][2 * at.k] < end) return true;
    }
    return false;
  }

  /** Ranges held, over every target (statistics and tests). */
  get size(): number {
    let n = 0;
    for (const t of this.targets.values()) for (const c of t.chunks) n += c.length / 2;
    return n;
  }

  /** Chunks over every target (tests: a storm keeps them bounded in size). */
  get chunkCount(): number {
    let n = 0;
    for (const t of this.targets.values()) n += t.chunks.length;
    return n;
  }
}

/** Sets `out` to the first range (over the chunks) whose end is >= x; past the last when none. */
function locate(ch: readonly number[][], x: number, out: Cursor): Cursor {
  let lo = 0;
  let hi = ch.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const c = ch[mid];
    if (c[c.length - 1] >= x) hi = mid;
    else lo = mid + 1;
  }
  out.c = lo;
  out.k = 0;
  if (lo === ch.length) return out;
  const r = ch[lo];
  let a = 0;
  let b = r.length / 2 - 1; // that chunk's last range ends at or after x
  while (a < b) {
    const mid = (a + b) >>> 1;
    if (r[2 * mid + 1] >= x) b = mid;
    else a = mid + 1;
  }
  out.k = a;
  return out;
}

/** The next range after `cur` (into the next chunk after a chunk's last). */
function step(ch: readonly number[][], cur: Cursor): void {
  if (2 * ++cur.k >= ch[cur.c].length) {
    cur.c++;
    cur.k = 0;
  }
}

/**
 * Replaces the ranges from `at` up to (not including) `to` with [s0, e0)
 * and [s1, e1) (either NaN: left out; both in order), then splits a chunk
 * grown past 2 * pairs ranges and drops the chunks left empty.
 */
function replace(ch: number[][], at: Cursor, to: Cursor, s0: number, e0: number, s1: number, e1: number, pairs: number): void {
  if (at.c === ch.length) {
    // Past the last range: append to the last chunk.
    if (ch.length === 0) ch.push([]);
    at.c = ch.length - 1;
    at.k = ch[at.c].length / 2;
    to.c = at.c;
    to.k = at.k;
  } else if (to.k === 0 && to.c > at.c) {
    // `to` is the start of a chunk: the span ends at the end of the chunk before.
    to.c--;
    to.k = ch[to.c].length / 2;
  }
  const r = ch[at.c];
  if (to.c === at.c) {
    const i = 2 * at.k;
    const n = 2 * (to.k - at.k);
    if (Number.isNaN(s0)) r.splice(i, n);
    else if (Number.isNaN(s1)) r.splice(i, n, s0, e0);
    else r.splice(i, n, s0, e0, s1, e1);
  } else {
    // Across chunks: the first keeps its head and takes the new ranges, the
    // chunks between go, the last loses its head.
    r.length = 2 * at.k;
    if (!Number.isNaN(s0)) r.push(s0, e0);
    if (!Number.isNaN(s1)) r.push(s1, e1);
    ch[to.c].splice(0, 2 * to.k);
    if (ch[to.c].length === 0) ch.splice(to.c, 1);
    if (to.c > at.c + 1) ch.splice(at.c + 1, to.c - at.c - 1);
  }
  if (r.length === 0) ch.splice(at.c, 1);
  else if (r.length > 4 * pairs) ch.splice(at.c + 1, 0, r.splice(2 * pairs));
}
