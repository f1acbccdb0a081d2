// Device-special VMAs (RFC patch 3/5): the exporter's policy decides, refusals are
// errnos with reasons, read-only exports, revocation while an importer streams,
// BAR slot recycling under pressure.
import t from 'tap';
import { allP2p } from '../../src/kernel/p2p_map.js';
import { PAGE_SIZE } from '../../src/shm/constants.js';
import { BarExporter } from '../../src/drivers/bar_exporter.js';
import { KiB, kernelMachine, MiB, mirrorSpec, pattern, openMirrors, bytesEq } from '../fixtures/kernel_machine.js';

t.test('device-special VMA', async (t) => {
  // exp: 1 MiB of memory behind a 16 KiB (4-slot) BAR window.
  const { kernel } = await kernelMachine(t, [mirrorSpec('m0'), mirrorSpec('m1'), mirrorSpec('exp', 1 * MiB, 16 * KiB)], { check: true, policy: allP2p });
  const mm = kernel.createMm();
  const [d0, d1] = await openMirrors(t, kernel, mm, ['m0', 'm1']);

  // mm/madvise.c madvise_dontneed_free_valid_vma(): VM_PFNMAP is forbidden, -EINVAL. Before, the
  // 'clear' invalidation ran and made every importer drop (and re-fault) its p2p mappings for nothing.
  t.test('madvise(MADV_DONTNEED) of a device-special VMA is EINVAL and invalidates nothing', async (t) => {
    const ex = new BarExporter(kernel, 'exp', { importers: ['m0'], readOnly: false, requireIommu: false, cpuMappable: false });
    const { va, vma } = await ex.mmap(mm, 2);
    const data = pattern(2 * PAGE_SIZE, 5);
    ex.fill(vma, 0, data);
    bytesEq(t, (await d0.read(va, 2)).data, data);
    const unmaps = ex.unmapCalls;
    const seq = mm.notifiers.invalidateSeq;
    await t.rejects(mm.madviseDontneed(va, 2 * PAGE_SIZE), { code: 'EINVAL' });
    t.equal(mm.notifiers.invalidateSeq, seq, 'no invalidation ran');
    t.equal(ex.unmapCalls, unmaps, 'the importer kept its mapping');
    await mm.munmap(va, 2 * PAGE_SIZE);
  });

  t.test('an allowed importer reads the exported memory peer to peer', async (t) => {
    const ex = new BarExporter(kernel, 'exp', { importers: ['m0'], readOnly: false, requireIommu: false, cpuMappable: false });
    const { va, vma } = await ex.mmap(mm, 4);
    const data = pattern(4 * PAGE_SIZE, 11);
    ex.fill(vma, 0, data);
    const r = await d0.read(va, 4);
    bytesEq(t, r.data, data);
    t.equal(ex.mapCalls, 1);
    await t.rejects(mm.read(va, 16), { code: 'EFAULT' }, 'not CPU-mappable: the CPU gets SIGBUS');
    const at = va + PAGE_SIZE - 3;
    await t.rejects(mm.read(at, 16), { message: new RegExp(`CPU load from 0x${at.toString(16)} .*SIGBUS`) }, 'at the faulting address (si_addr), not its page');
    await mm.munmap(va, 4 * PAGE_SIZE);
    t.equal(d0.violations().count, 0);
  });

  t.test('a refused importer gets EPERM with a reason naming both ends', async (t) => {
    const ex = new BarExporter(kernel, 'exp', { importers: ['m0'], readOnly: false, requireIommu: false, cpuMappable: false });
    const { va } = await ex.mmap(mm, 2);
    const e = await d1.read(va, 2).catch((x: unknown) => x);
    t.match(e, { code: 'EPERM' });
    t.match(kernel.log.at(-1), /bar-exporter of exp refuses m1: not an allowed importer \(policy importers: \[m0\]\)/);
    t.equal(ex.refusals, 1);
    const ex2 = new BarExporter(kernel, 'exp', { importers: '*', readOnly: false, requireIommu: true, cpuMappable: false });
    const m2 = await ex2.mmap(mm, 1);
    await t.rejects(d1.read(m2.va, 1), { code: 'EPERM' }, 'IOMMU required, importer has none');
    t.match(kernel.log.at(-1), /requires the importer behind an IOMMU/);
    await mm.munmap(va, 2 * PAGE_SIZE);
    await mm.munmap(m2.va, PAGE_SIZE);
  });

  t.test('a read-only export: reads work, writes are refused', async (t) => {
    const ex = new BarExporter(kernel, 'exp', { importers: '*', readOnly: true, requireIommu: false, cpuMappable: true });
    const { va, vma } = await ex.mmap(mm, 2);
    ex.fill(vma, 0, pattern(2 * PAGE_SIZE, 12));
    bytesEq(t, (await d0.read(va, 2)).data, pattern(2 * PAGE_SIZE, 12));
    await t.rejects(d0.write(va, 1, new Uint8Array(PAGE_SIZE)), { code: 'EPERM' });
    bytesEq(t, await mm.read(va, 8), pattern(8, 12), 'cpuMappable: the CPU reads it');
    await mm.munmap(va, 2 * PAGE_SIZE);
  });

  t.test('revocation while an importer streams: it refaults and the data stays correct', async (t) => {
    const ex = new BarExporter(kernel, 'exp', { importers: '*', readOnly: false, requireIommu: false, cpuMappable: false });
    const n = 4;
    const { va, vma } = await ex.mmap(mm, n);
    const data = pattern(n * PAGE_SIZE, 13);
    ex.fill(vma, 0, data);
    const oldPage = ex.pageOf(vma, 0);
    const c0 = await d0.counters();
    let revoked: Promise<void> | null = null;
    let reads = 0;
    d0.onFault = () => {
      if (!revoked) revoked = ex.revoke(vma);
    };
    for (let k = 0; k < 6; k++) {
      const r = await d0.read(va, n);
      bytesEq(t, r.data, data, `pass ${k}: data correct`);
      reads++;
      await revoked;
    }
    d0.onFault = null;
    t.equal(ex.revocations, 1);
    t.not(ex.pageOf(vma, 0), oldPage, 'the exporter took its pages back and moved the data');
    // Either order is legal: the revocation lands after the first fault's
    // reply (the entries die and the next pass refaults), or while the fault
    // is in flight (the reply is stale: EBUSY, and the device retries).
    const c1 = await d0.counters();
    t.ok(c1.requests + c1.retries - (c0.requests + c0.retries) >= 2, 'the importer refaulted (or retried) after the revocation');
    t.equal(d0.violations().count, 0, 'no access to the revoked pages');
    t.equal(reads, 6);
    await mm.munmap(va, n * PAGE_SIZE);
  });

  t.test('BAR slot recycling under pressure (4 slots, 12 pages)', async (t) => {
    const ex = new BarExporter(kernel, 'exp', { importers: '*', readOnly: false, requireIommu: false, cpuMappable: false });
    const n = 12;
    const { va, vma } = await ex.mmap(mm, n);
    const data = pattern(n * PAGE_SIZE, 14);
    ex.fill(vma, 0, data);
    const before = ex.barManager.recycled;
    const r = await d0.read(va, n);
    bytesEq(t, r.data, data);
    t.ok(r.requests >= 3, `faulted in windows no larger than the BAR (${r.requests} page requests)`);
    t.equal(r.faults, 1, 'one dmirror_fault() call, however many windows');
    t.ok(ex.barManager.recycled - before >= 8, `LRU slots recycled (${ex.barManager.recycled - before})`);
    t.ok(ex.barManager.mappedSlots <= 4);
    bytesEq(t, (await d0.read(va, n)).data, data, 'a second pass recycles again and stays correct');
    t.equal(d0.violations().count, 0);
    await mm.munmap(va, n * PAGE_SIZE);
  });
});
