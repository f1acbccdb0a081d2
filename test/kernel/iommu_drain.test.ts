// One-device IOMMU domains: the IOTLB flush of a binding's IOVAs rides in
// the post that invalidates its VA range (one ack, as intel-iommu's
// cache_tag_flush_range batches IOTLB and device-TLB descriptors behind one
// qi_submit_sync). Just before that post the IOVAs are marked draining
// (IommuDomain.drain): the device may walk them until it acks that post,
// never after, so a device that kept its VA translations cannot refill its
// IOTLB between the ack and the unmap.
import t from 'tap';
import { PAGE_SIZE } from '../../src/shm/constants.js';
import { DeviceCtl, INV_BATCH } from '../../src/shm/device_ctl.js';
import type { DeviceShm } from '../../src/shm/phys_mem.js';
import { IommuDomain } from '../../src/kernel/iommu.js';
import { IommuWalk } from '../../workers/runtime/iommu_walk.js';
import { PROT_READ, PROT_WRITE } from '../../src/kernel/mm.js';
import { allP2p } from '../../src/kernel/p2p_map.js';
import { kernelMachine, mirrorSpec, pattern, bytesEq, openMirrors } from '../fixtures/kernel_machine.js';

t.test('a draining PTE is walked until the device acks the post that flushes it, never after', async (t) => {
  const dom = new IommuDomain('dom', [{ name: 'd', index: 0 }], () => []);
  const ctl = new Int32Array(new SharedArrayBuffer(DeviceCtl.kBytes));
  const walk = new IommuWalk(dom.sab, { name: 'd', index: 0, ctl } as unknown as DeviceShm);
  const iova = dom.map(7 * PAGE_SIZE, true);
  const seq = 5;
  Atomics.store(ctl, DeviceCtl.invAck, seq - 1);
  dom.drain(iova, seq);
  t.match(walk.translate(iova, PAGE_SIZE, true), { addr: 7 * PAGE_SIZE }, 'in flight before the ack: translated, writable as mapped');
  walk.flush(iova, iova + PAGE_SIZE); // the post's IOTLB flush, run at the ack
  Atomics.store(ctl, DeviceCtl.invAck, seq);
  t.match(walk.translate(iova, PAGE_SIZE, false), { fault: /IOVA being unmapped, its IOTLB flush acked/ }, 'after the ack: an IOMMU fault');
  t.equal(dom.faults().count, 1);
  Atomics.store(ctl, DeviceCtl.invAck, (seq + 1) | 0);
  t.match(walk.translate(iova, PAGE_SIZE, false), { fault: /being unmapped/ }, 'and after any later ack');
  dom.unmap(iova);
  t.match(walk.translate(iova, PAGE_SIZE, false), { fault: /IOVA not mapped/ });
});

t.test('seq wrap: the drain seq compares modulo 2^32', async (t) => {
  const dom = new IommuDomain('dom', [{ name: 'd', index: 0 }], () => []);
  const ctl = new Int32Array(new SharedArrayBuffer(DeviceCtl.kBytes));
  const walk = new IommuWalk(dom.sab, { name: 'd', index: 0, ctl } as unknown as DeviceShm);
  const iova = dom.map(3 * PAGE_SIZE, false);
  Atomics.store(ctl, DeviceCtl.invAck, 0x7fffffff);
  dom.drain(iova, (0x7fffffff + 1) | 0);
  t.match(walk.translate(iova, PAGE_SIZE, false), { addr: 3 * PAGE_SIZE });
  walk.flush(iova, iova + PAGE_SIZE);
  Atomics.store(ctl, DeviceCtl.invAck, (0x7fffffff + 1) | 0);
  t.match(walk.translate(iova, PAGE_SIZE, false), { fault: /being unmapped/ });
});

t.test('a binding flush with the IOMMU on is one post and one ack, and releases its IOVAs', async (t) => {
  const { kernel } = await kernelMachine(t, [mirrorSpec('io0')], { check: true, iommu: ['io0'], policy: allP2p });
  const mm = kernel.createMm();
  const [io0] = await openMirrors(t, kernel, mm, ['io0']);
  const dom = kernel.domain('io0')!;
  const inv = kernel.invalidator('io0');
  const va = await mm.mmap({ length: 4 * PAGE_SIZE, prot: PROT_READ | PROT_WRITE });
  await mm.write(va, pattern(4 * PAGE_SIZE, 41));
  bytesEq(t, (await io0.read(va, 4)).data, pattern(4 * PAGE_SIZE, 41));
  t.equal(dom.mapped, 4);
  const sent = inv.stats.sent;
  await mm.madviseDontneed(va, 4 * PAGE_SIZE);
  t.equal(inv.stats.sent - sent, 1, 'VA range and IOTLB flush in one post');
  t.equal(dom.mapped, 0, 'IOVAs unmapped after the ack');
  t.equal((await io0.counters()).iotlb, 0, 'IOTLB flushed by that post');
  await mm.write(va, pattern(4 * PAGE_SIZE, 42));
  bytesEq(t, (await io0.read(va, 4)).data, pattern(4 * PAGE_SIZE, 42), 'refaulted through fresh IOVAs');
  t.equal(io0.violations().count, 0);
  t.equal(dom.faults().count, 0, 'no IOMMU fault for a well-behaved device');
});

t.test('a drain rides in a post covering every range of its round trip, however many posts it takes', async (t) => {
  const { machine, kernel } = await kernelMachine(t, [mirrorSpec('m0')], { check: true });
  const inv = kernel.invalidator('m0');
  // Low "IOVA" pages and a high "VA" range: sorted by address, they fall in different slices.
  const ranges = Array.from({ length: INV_BATCH + 6 }, (_, i) => ({ start: (0x100 + 2 * i) * PAGE_SIZE, end: (0x101 + 2 * i) * PAGE_SIZE }));
  ranges.push({ start: 0x7f0000000000, end: 0x7f0000000000 + 4 * PAGE_SIZE });
  const calls: { seq: number; batch: readonly { start: number; end: number }[] }[] = [];
  const sent = inv.stats.sent;
  await inv.invalidate(ranges, (seq, batch) => calls.push({ seq, batch: [...batch] }));
  t.equal(inv.stats.sent - sent, 3, 'two slices, then the drain post');
  t.equal(calls.length, 1, 'the drain hook runs once');
  t.equal(Atomics.load(machine.device('m0').shm.ctl, DeviceCtl.invAck), calls[0].seq, 'for the last post of the round trip');
  t.ok(ranges.every((r) => calls[0].batch.some((b) => b.start <= r.start && r.end <= b.end)), 'which covers every range, the IOVAs and the VA range');
  t.ok(calls[0].batch.length <= INV_BATCH);
});
