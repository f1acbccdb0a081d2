// IOVA reuse as late as possible (src/kernel/iommu.ts): fresh IOVA space
// first, then the oldest flushed IOVA, so a device that kept a stale IOVA in
// its own TLB meets an unmapped PTE (an IOMMU fault) and not another page.
import t from 'tap';
import { IOVA_PAGES, IommuDomain } from '../../src/kernel/iommu.js';
import { PAGE_SIZE } from '../../src/shm/constants.js';

t.test('fresh IOVAs first, then the oldest flushed one (FIFO), never an unflushed one', async (t) => {
  const dom = new IommuDomain('test domain', [], () => []);
  const a = dom.map(0x1000_0000, true);
  const b = dom.map(0x1000_1000, true);
  dom.unmap(a);
  dom.unmap(b);
  const c = dom.map(0x1000_2000, true);
  t.not(c, a, 'an unflushed IOVA is not reused');
  await dom.flush([{ start: a, end: b + PAGE_SIZE }]);
  const d = dom.map(0x1000_3000, true);
  t.ok(d > c, 'flushed IOVAs wait while fresh space is left');
  for (let k = 4; k < IOVA_PAGES; k++) dom.map(0x1000_0000 + k * PAGE_SIZE, false); // use up the fresh space
  t.equal(dom.map(0x2000_0000, true), a, 'then the oldest flushed IOVA comes back first');
  t.equal(dom.map(0x2000_1000, true), b);
  t.throws(() => dom.map(0x2000_2000, true), { code: 'ENOSPC' });
});
