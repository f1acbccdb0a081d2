/**
 * The IOVAs an importer mapped, by VA page: a two-level table (like the
 * page tables it shadows) of 512-entry leaves keyed by vpn >> 9, so a
 * window of a page request sets and a flush takes whole leaves' worth of
 * entries with typed-array stores, not one Map operation per page on a
 * key past 2^31 (a VA page number is no small integer).
 *
 * Mirrors the driver-side bookkeeping of dma_map_page/dma_unmap_page: a
 * driver remembers the dma_addr_t of every page it mapped, to unmap it.
 *
 * A page may have several IOVAs: a page request answered again with a
 * new IOVA for a page (a write after a read-only mapping) leaves the old
 * one mapped, as a driver that dma_map_page()s a page twice holds two
 * handles: an earlier reply the device may install or use still carries
 * it. Both go at the page's next invalidation (take).
 *
 * Invariants: a leaf is in `leaves` only while it holds an entry (count);
 * a page in its leaf's `older` has an entry in that leaf. `older` lives in
 * the leaf so a flush looks only at the leaves it covers, not at every
 * page that ever had two IOVAs.
 */
const LEAF_SHIFT = 9;
const LEAF = 1 << LEAF_SHIFT;
const NONE = -1;

interface Leaf {
  readonly iova: Float64Array;
  count: number;
  /** Index in the leaf -> the IOVAs the page had before its current one (replace), still mapped; null while none. */
  older: Map<number, number[]> | null;
}

export class IovaTable {
  private readonly leaves = new Map<number, Leaf>();
  /** Entries held. */
  size = 0;

  /** The IOVA of VA page `vpn`, or -1. */
  get(vpn: number): number {
    const leaf = this.leaves.get(Math.floor(vpn / LEAF));
    return leaf ? leaf.iova[vpn % LEAF] : NONE;
  }

  /** Private: a page's current IOVA is only ever changed by replace(), which keeps the one it had for take(). Returns the page's leaf. */
  private set(vpn: number, iova: number): Leaf {
    const key = Math.floor(vpn / LEAF);
    let leaf = this.leaves.get(key);
    if (!leaf) {
      leaf = { iova: new Float64Array(LEAF).fill(NONE), count: 0, older: null };
      this.leaves.set(key, leaf);
    }
    const i = vpn % LEAF;
    if (leaf.iova[i] === NONE) {
      leaf.count++;
      this.size++;
    }
    leaf.iova[i] = iova;
    return leaf;
  }

  /** `vpn`'s IOVA is now `iova` (a new one, or one of olderOf(vpn)); the one it had (if any) stays listed for take(). */
  replace(vpn: number, iova: number): void {
    const old = this.get(vpn);
    if (old === iova) return;
    const leaf = this.set(vpn, iova);
    const i = vpn % LEAF;
    const l = leaf.older?.get(i) ?? [];
    const at = l.indexOf(iova);
    if (at >= 0) l.splice(at, 1);
    if (old !== NONE) l.push(old);
    if (l.length > 0) (leaf.older ??= new Map()).set(i, l);
    else leaf.older?.delete(i);
  }

  /** The IOVAs `vpn` had before its current one and still holds (replace). */
  olderOf(vpn: number): readonly number[] {
    return this.leaves.get(Math.floor(vpn / LEAF))?.older?.get(vpn % LEAF) ?? [];
  }

  /** Removes the entries of VA pages [v0, v1) and returns their IOVAs (every IOVA each page had: replace). */
  take(v0: number, v1: number): number[] {
    const out: number[] = [];
    if (this.size === 0 || v1 <= v0) return out;
    const k0 = Math.floor(v0 / LEAF);
    const k1 = Math.floor((v1 - 1) / LEAF);
    if (k1 - k0 < this.leaves.size) {
      for (let k = k0; k <= k1; k++) this.takeLeaf(k, v0, v1, out);
    } else {
      for (const k of [...this.leaves.keys()]) if (k >= k0 && k <= k1) this.takeLeaf(k, v0, v1, out);
    }
    return out;
  }

  private takeLeaf(k: number, v0: number, v1: number, out: number[]): void {
    const leaf = this.leaves.get(k);
    if (!leaf) return;
    const base = k * LEAF;
    const a = leaf.iova;
    const i0 = Math.max(v0 - base, 0);
    const i1 = Math.min(v1 - base, LEAF);
    if (leaf.older) this.takeOlder(leaf.older, i0, i1, out);
    for (let i = i0; i < i1; i++) {
      if (a[i] === NONE) continue;
      out.push(a[i]);
      a[i] = NONE;
      leaf.count--;
      this.size--;
    }
    if (leaf.count === 0) this.leaves.delete(k);
  }

  /** Moves the older IOVAs of leaf indices [i0, i1) into `out`. */
  private takeOlder(older: Map<number, number[]>, i0: number, i1: number, out: number[]): void {
    for (const [i, l] of older) {
      if (i < i0 || i >= i1) continue;
      for (const iova of l) out.push(iova);
      older.delete(i);
    }
  }
}
