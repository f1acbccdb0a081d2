/**
 * Page frame allocator over one physical memory (system RAM or a device's
 * local memory), handing out contiguous extents.
 *
 * Mirrors the role of the kernel's buddy allocator (alloc_pages /
 * __free_pages) with the design rule of DESIGN.md section 3: allocate in
 * contiguous runs, because copying runs reaches memcpy speed while
 * scattered 4 KiB pages do not.
 *
 * Invariants:
 * - `free` is sorted by start and no two extents touch (they are merged);
 * - freeing a page bumps its generation (the safety checker compares device
 *   TLB entries against it) and poisons its bytes;
 * - only the main thread allocates; workers never call this.
 */
import { PAGE_SIZE, POISON_BYTE } from './constants.js';
import { PeerVmaError } from '../errors.js';

/** POISON_BYTE in each byte of a word (PAGE_SIZE is a multiple of 4). */
const POISON_WORD = POISON_BYTE * 0x01010101;
const WORDS_PER_PAGE = PAGE_SIZE / 4;

export interface Extent {
  readonly start: number;
  readonly count: number;
}

export class PageAllocator {
  /** Free extents, sorted, coalesced. Guarded by: single-threaded main. */
  private free: Extent[];
  private used = 0;
  /**
   * The same memory as 32-bit words, for the poison fill: a byte fill of a
   * SharedArrayBuffer runs at a third of the speed of a word fill (measured
   * 0.7-1.0 ms against 0.2-0.3 ms per 4 MiB on this host), and a migration
   * frees its source pages inside the timed window.
   */
  private readonly words: Uint32Array;

  constructor(
    readonly name: string,
    readonly totalPages: number,
    bytes: Uint8Array,
    private readonly gen: Int32Array,
  ) {
    this.free = totalPages > 0 ? [{ start: 0, count: totalPages }] : [];
    if (bytes.byteOffset % 4 !== 0) throw new RangeError(`${name}: memory view at byte offset ${bytes.byteOffset} is not word aligned`);
    this.words = new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength >>> 2);
  }

  /**
   * Commits the host backing of every page now (MAP_POPULATE): a fresh
   * SharedArrayBuffer is zero pages the host maps on first write, at about
   * 1.4 us a page on this machine (4 MiB: 1.4 ms against 0.4 ms for a
   * warm copy). Modeled memory is present from power-on; without this, the
   * first use of a device page inside a timed window (a migration's copy)
   * would pay the host's page fault, which no modeled device has. One
   * atomic read-modify-write of +0 per page: it keeps the content (a page
   * may already be in use, by the driver or a device worker) and is a write,
   * which a read would not be (a read maps the shared zero page).
   */
  populate(): void {
    for (let w = 0; w < this.words.length; w += WORDS_PER_PAGE) Atomics.or(this.words, w, 0);
  }

  get usedPages(): number {
    return this.used;
  }

  get freePages(): number {
    return this.totalPages - this.used;
  }

  /** First-fit contiguous allocation; ENOMEM names the allocator and the sizes. */
  allocContig(count: number): Extent {
    if (!Number.isInteger(count) || count <= 0) throw new PeerVmaError('EINVAL', `${this.name}`, `cannot allocate ${count} pages`);
    const i = this.free.findIndex((e) => e.count >= count);
    if (i < 0) {
      const largest = this.free.reduce((m, e) => Math.max(m, e.count), 0);
      throw new PeerVmaError('ENOMEM', this.name, `no run of ${count} free pages (largest free run ${largest}, ${this.freePages} free of ${this.totalPages})`);
    }
    const e = this.free[i];
    if (e.count === count) this.free.splice(i, 1);
    else this.free[i] = { start: e.start + count, count: e.count - count };
    this.used += count;
    return { start: e.start, count };
  }

  /** Allocates `count` pages as few extents as possible (largest first). */
  allocPages(count: number): Extent[] {
    if (count > this.freePages) throw new PeerVmaError('ENOMEM', this.name, `asked ${count} pages, ${this.freePages} free of ${this.totalPages}`);
    const out: Extent[] = [];
    let left = count;
    while (left > 0) {
      const largest = this.free.reduce((m, e) => Math.max(m, e.count), 0);
      const e = this.allocContig(Math.min(left, largest));
      out.push(e);
      left -= e.count;
    }
    return out;
  }

  /**
   * `count` pages listed one by one (as few runs as possible, as
   * allocPages), not zeroed: for a caller that overwrites or clears each
   * page itself (a migration copies into them).
   */
  allocPageList(count: number): Int32Array {
    const out = new Int32Array(count);
    let k = 0;
    for (const e of this.allocPages(count)) for (let p = e.start; p < e.start + e.count; p++) out[k++] = p;
    return out;
  }

  /** Frees pages given one by one: each run of consecutive pages is one freeExtent. */
  freePageList(pages: ArrayLike<number>): void {
    for (let i = 0; i < pages.length; ) {
      let j = i + 1;
      while (j < pages.length && pages[j] === pages[j - 1] + 1) j++;
      this.freeExtent({ start: pages[i], count: j - i });
      i = j;
    }
  }

  /** Returns an extent: generation bumped, bytes poisoned, merged back into the free list. */
  freeExtent(x: Extent): void {
    if (x.start < 0 || x.start + x.count > this.totalPages) throw new PeerVmaError('EINVAL', this.name, `free of pages [${x.start}, +${x.count}) outside 0..${this.totalPages}`);
    for (let p = x.start; p < x.start + x.count; p++) Atomics.add(this.gen, p, 1);
    this.words.fill(POISON_WORD, x.start * WORDS_PER_PAGE, (x.start + x.count) * WORDS_PER_PAGE);
    const i = this.firstAtOrAfter(x.start);
    const prev = this.free[i - 1];
    const next = this.free[i];
    if ((prev && prev.start + prev.count > x.start) || (next && x.start + x.count > next.start)) {
      throw new PeerVmaError('EINVAL', this.name, `double free of pages [${x.start}, +${x.count})`);
    }
    this.free.splice(i, 0, { ...x });
    this.coalesce(i);
    this.used -= x.count;
  }

  /** Index of the first free extent starting at or after `page` (binary search: the list is sorted). */
  private firstAtOrAfter(page: number): number {
    let lo = 0;
    let hi = this.free.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.free[mid].start < page) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  private coalesce(i: number): void {
    const cur = this.free[i];
    const next = this.free[i + 1];
    if (next && cur.start + cur.count === next.start) this.free.splice(i, 2, { start: cur.start, count: cur.count + next.count });
    const prev = this.free[i - 1];
    const now = this.free[i];
    if (prev && prev.start + prev.count === now.start) this.free.splice(i - 1, 2, { start: prev.start, count: prev.count + now.count });
  }
}
