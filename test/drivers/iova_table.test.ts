// IovaTable: the importer's VA page -> IOVA record (two-level, 512-entry leaves).
import t from 'tap';
import { IovaTable } from '../../src/drivers/iova_table.js';

t.test('replace, get, take across leaves; empty leaves go away', async (t) => {
  const m = new IovaTable();
  const base = 2 ** 35 - 700; // VA page numbers are past 2^31
  for (let k = 0; k < 1000; k++) m.replace(base + k, 0x100000 + k * 4096);
  t.equal(m.size, 1000);
  t.equal(m.get(base + 999), 0x100000 + 999 * 4096);
  t.equal(m.get(base - 1), -1);
  m.replace(base + 5, 0x900000); // a second IOVA for the page: current, the first kept for take
  t.equal(m.size, 1000, 'one entry per page');
  const got = m.take(base + 3, base + 600);
  t.equal(got.length, 598, 'every IOVA of the pages taken, both of page 5');
  t.ok(got.includes(0x900000) && got.includes(0x100000 + 5 * 4096));
  t.equal(m.get(base + 3), -1);
  t.equal(m.get(base + 2), 0x100000 + 2 * 4096);
  t.equal(m.size, 403);
  t.equal(m.take(0, 2 ** 36).length, 403, 'a range wider than the table walks the leaves it has');
  t.equal(m.size, 0);
  t.same(m.take(base, base + 10), []);
});

t.test('replace keeps the IOVA a page had until take (a page handed out at two IOVAs)', async (t) => {
  const m = new IovaTable();
  const base = 2 ** 35;
  m.replace(base, 0x100000);
  m.replace(base + 1, 0x101000);
  m.replace(base, 0x200000);
  m.replace(base, 0x200000); // the same IOVA again: nothing more to keep
  m.replace(base, 0x300000);
  m.replace(base + 2, 0x400000); // no IOVA before: a plain set
  t.equal(m.get(base), 0x300000, 'the page resolves to its newest IOVA');
  t.same(m.take(base + 1, base + 3), [0x101000, 0x400000], 'another range takes none of them');
  t.same(m.take(base, base + 1).sort(), [0x100000, 0x200000, 0x300000], 'the page\'s invalidation takes every IOVA it had');
  t.same(m.take(base, base + 1), []);
  t.equal(m.size, 0);
});

t.test('replace with one of the older IOVAs makes it current again, listed once', async (t) => {
  const m = new IovaTable();
  const v = 2 ** 35 + 7;
  m.replace(v, 0x100000); // read-only
  m.replace(v, 0x200000); // writable
  t.same(m.olderOf(v), [0x100000]);
  m.replace(v, 0x100000); // read-only again: the first IOVA
  t.equal(m.get(v), 0x100000);
  t.same(m.olderOf(v), [0x200000], 'each IOVA listed once');
  t.same(m.take(v, v + 1).sort(), [0x100000, 0x200000]);
  t.same(m.olderOf(v), []);
});

t.test('a flush of one leaf leaves the older IOVAs of pages in other leaves alone', async (t) => {
  const m = new IovaTable();
  const a = 2 ** 35; // leaf of a
  const b = a + 5 * 512; // another leaf
  m.replace(a, 0x100000);
  m.replace(a, 0x200000);
  m.replace(b, 0x300000);
  m.replace(b, 0x400000);
  t.same(m.take(b, b + 1).sort(), [0x300000, 0x400000], "b's flush takes both of b's IOVAs");
  t.same(m.olderOf(a), [0x100000], "and none of a's");
  t.same(m.take(a - 512, a + 512).sort(), [0x100000, 0x200000]);
  t.equal(m.size, 0);
});
