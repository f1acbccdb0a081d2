// IommuWalk.translate returns a run: as many IOVA pages as map consecutive
// bus pages with the access allowed (the DMA engine copies a run per call);
// the page that ends a run is left to the next call, which reports its fault.
import t from 'tap';
import { PAGE_SIZE } from '../../src/shm/constants.js';
import { DeviceCtl } from '../../src/shm/device_ctl.js';
import type { DeviceShm } from '../../src/shm/phys_mem.js';
import { IommuDomain } from '../../src/kernel/iommu.js';
import { IommuWalk } from '../../workers/runtime/iommu_walk.js';

function setup() {
  const dom = new IommuDomain('dom', [{ name: 'd', index: 0 }], () => []);
  const ctl = new Int32Array(new SharedArrayBuffer(DeviceCtl.kBytes));
  return { dom, walk: new IommuWalk(dom.sab, { name: 'd', index: 0, ctl } as unknown as DeviceShm) };
}

t.test('contiguous pages translate as one run, cut at a discontiguous pfn', async (t) => {
  const { dom, walk } = setup();
  const a = dom.map(10 * PAGE_SIZE, true);
  dom.map(11 * PAGE_SIZE, true);
  dom.map(12 * PAGE_SIZE, true);
  dom.map(20 * PAGE_SIZE, true); // not 13: the run ends before it
  t.same(walk.translate(a + 100, 8 * PAGE_SIZE, false), { addr: 10 * PAGE_SIZE + 100, len: 3 * PAGE_SIZE - 100 });
  t.same(walk.translate(a + 3 * PAGE_SIZE, PAGE_SIZE, false), { addr: 20 * PAGE_SIZE, len: PAGE_SIZE });
  t.same(walk.translate(a, 2 * PAGE_SIZE - 8, true), { addr: 10 * PAGE_SIZE, len: 2 * PAGE_SIZE - 8 }, 'never past len');
  t.equal(walk.iotlbSize, 4);
  walk.flush(a, a + 2 * PAGE_SIZE);
  t.equal(walk.iotlbSize, 2, 'flush drops the entries of its range only');
});

t.test('a read-only or unmapped page ends a run; the next call faults on it', async (t) => {
  const { dom, walk } = setup();
  const a = dom.map(30 * PAGE_SIZE, true);
  dom.map(31 * PAGE_SIZE, false);
  const c = dom.map(32 * PAGE_SIZE, true);
  t.same(walk.translate(a, 3 * PAGE_SIZE, true), { addr: 30 * PAGE_SIZE, len: PAGE_SIZE }, 'a write stops at the read-only page');
  t.equal(dom.faults().count, 0, 'no fault for the page left to the next call');
  t.match(walk.translate(a + PAGE_SIZE, 2 * PAGE_SIZE, true), { fault: /IOVA mapped read-only/ });
  t.same(walk.translate(a, 3 * PAGE_SIZE, false), { addr: 30 * PAGE_SIZE, len: 3 * PAGE_SIZE }, 'a read runs through it');
  dom.unmap(c);
  walk.flush(c, c + PAGE_SIZE);
  t.same(walk.translate(a, 3 * PAGE_SIZE, false), { addr: 30 * PAGE_SIZE, len: 2 * PAGE_SIZE }, 'cut before the unmapped page');
  t.match(walk.translate(c, PAGE_SIZE, false), { fault: /IOVA not mapped/ });
  t.equal(dom.faults().count, 2);
});
