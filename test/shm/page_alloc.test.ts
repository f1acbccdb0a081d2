// PageAllocator: page lists (a migration's destinations and freed sources),
// runs freed at once, the sorted free list kept coalesced, double frees refused.
import t from 'tap';
import { PAGE_SIZE, POISON_BYTE } from '../../src/shm/constants.js';
import { PageAllocator } from '../../src/shm/page_alloc.js';
import { PeerVmaError } from '../../src/errors.js';

function allocator(pages: number): { a: PageAllocator; bytes: Uint8Array; gen: Int32Array } {
  const bytes = new Uint8Array(pages * PAGE_SIZE).fill(7);
  const gen = new Int32Array(pages);
  return { a: new PageAllocator('test ram', pages, bytes, gen), bytes, gen };
}

t.test('allocPageList lists the pages of as few runs as possible, not zeroed', async (t) => {
  const { a, bytes } = allocator(16);
  a.allocContig(2); // pages 0, 1
  a.freeExtent({ start: 0, count: 1 }); // free: [0], [2, 16)
  const l = a.allocPageList(15);
  t.same([...l], [2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 0], 'the large run first, then the hole');
  t.equal(a.freePages, 0);
  t.equal(bytes[3 * PAGE_SIZE], 7, 'the caller overwrites or clears the pages itself');
  t.throws(() => a.allocPageList(1), PeerVmaError, 'ENOMEM when full');
});

t.test('freePageList frees each run at once: generations bumped, bytes poisoned', async (t) => {
  const { a, bytes, gen } = allocator(8);
  a.allocPageList(8);
  a.freePageList([5, 6, 7, 1, 3]);
  t.same([...gen], [0, 1, 0, 1, 0, 1, 1, 1]);
  for (const p of [1, 3, 5, 6, 7]) t.equal(bytes[p * PAGE_SIZE + 100], POISON_BYTE, `page ${p} poisoned`);
  t.equal(bytes[2 * PAGE_SIZE], 7, 'a page still in use is untouched');
  t.equal(a.freePages, 5);
  t.same(a.allocContig(3), { start: 5, count: 3 }, 'the run 5..7 came back as one extent');
  t.throws(() => a.freePageList([3]), /double free/, 'a page freed twice is refused');
});

t.test('frees in any order coalesce back into one extent', async (t) => {
  const n = 64;
  const { a } = allocator(n);
  a.allocPageList(n);
  const odd = Array.from({ length: n / 2 }, (_, i) => 2 * i + 1).reverse();
  const even = Array.from({ length: n / 2 }, (_, i) => 2 * i);
  for (const p of odd) a.freeExtent({ start: p, count: 1 });
  a.freePageList(even);
  t.equal(a.freePages, n);
  t.same(a.allocContig(n), { start: 0, count: n }, 'one run of every page');
});

t.test('a freed run is poisoned in every byte, and not one byte beyond it (word fill)', async (t) => {
  const { a, bytes } = allocator(6);
  a.allocPageList(6);
  a.freePageList([2, 3]);
  const run = bytes.subarray(2 * PAGE_SIZE, 4 * PAGE_SIZE);
  t.equal(run.findIndex((b) => b !== POISON_BYTE), -1, 'pages 2 and 3 hold POISON_BYTE throughout');
  t.equal(bytes[2 * PAGE_SIZE - 1], 7, 'the last byte of page 1 is untouched');
  t.equal(bytes[4 * PAGE_SIZE], 7, 'the first byte of page 4 is untouched');
  const sub = new Uint8Array(new ArrayBuffer(4 * PAGE_SIZE + 4), 4, 4 * PAGE_SIZE).fill(7);
  const b = new PageAllocator('offset view', 4, sub, new Int32Array(4));
  b.allocPageList(4);
  b.freePageList([1]);
  t.equal(sub[PAGE_SIZE], POISON_BYTE, 'a view at a word-aligned byte offset: its own page 1 is poisoned');
  t.equal(sub[PAGE_SIZE - 1], 7, 'and page 0 is not');
  t.throws(() => new PageAllocator('unaligned', 1, new Uint8Array(new ArrayBuffer(PAGE_SIZE + 1), 1), new Int32Array(1)), /not word aligned/, 'a view off a word boundary is refused');
});

t.test('populate commits the memory without changing a byte of it (pages in use keep their data)', async (t) => {
  const pages = 4;
  const bytes = new Uint8Array(new SharedArrayBuffer(pages * PAGE_SIZE));
  const a = new PageAllocator('populated', pages, bytes, new Int32Array(pages));
  const used = a.allocContig(2);
  for (let i = 0; i < 2 * PAGE_SIZE; i++) bytes[i] = (i * 7 + 3) & 0xff;
  const before = bytes.slice();
  a.populate();
  t.equal(bytes.findIndex((b, i) => b !== before[i]), -1, 'every byte is what it was');
  t.same(used, { start: 0, count: 2 });
  t.equal(a.freePages, 2, 'nothing allocated or freed');
});
