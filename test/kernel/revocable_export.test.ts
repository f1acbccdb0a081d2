// Revocable exports (dma-buf / VFIO style), beside the RFC's move-and-remap:
// the exporter revokes a range (importers invalidated as after
// dma_buf_move_notify, later maps fail ENODEV) and restores it (maps work
// again). With the IOMMU on, an importer that ignores the invalidation and
// keeps using the range gets IOMMU faults, and the exporter's bytes stay intact.
import t from 'tap';
import { PAGE_SIZE } from '../../src/shm/constants.js';
import { DeviceCtl } from '../../src/shm/device_ctl.js';
import { BarExporter } from '../../src/drivers/bar_exporter.js';
import { allP2p } from '../../src/kernel/p2p_map.js';
import { KiB, kernelMachine, MiB, mirrorSpec, pattern, openMirrors, bytesEq } from '../fixtures/kernel_machine.js';

t.test('revocable exports', async (t) => {
  const { machine, kernel } = await kernelMachine(t, [mirrorSpec('m0'), mirrorSpec('io0'), mirrorSpec('exp', 1 * MiB, 64 * KiB)], { check: true, policy: allP2p, iommu: ['io0'] });
  const mm = kernel.createMm();
  const [m0, io0] = await openMirrors(t, kernel, mm, ['m0', 'io0']);
  const ctl = (n: string) => machine.device(n).shm.ctl;

  t.test('revoke: the importer is invalidated and refaults fail ENODEV; restore: maps work again', async (t) => {
    const ex = new BarExporter(kernel, 'exp', { importers: '*', readOnly: false, requireIommu: false, cpuMappable: true });
    const { va, vma } = await ex.mmap(mm, 4);
    ex.fill(vma, 0, pattern(4 * PAGE_SIZE, 1));
    bytesEq(t, (await m0.read(va, 4)).data, pattern(4 * PAGE_SIZE, 1));
    const page0 = ex.pageOf(vma, 0);
    await ex.revokeAccess(vma, va + 2 * PAGE_SIZE, va + 4 * PAGE_SIZE);
    t.ok(ex.revokedIn(vma, va + 2 * PAGE_SIZE, va + 3 * PAGE_SIZE));
    t.notOk(ex.revokedIn(vma, va, va + 2 * PAGE_SIZE), 'only the revoked range');
    bytesEq(t, (await m0.read(va, 2)).data, pattern(2 * PAGE_SIZE, 1), 'the rest of the export still works');
    const before = m0.requests;
    await t.rejects(m0.read(va + 2 * PAGE_SIZE, 2), { code: 'ENODEV' }, 'the TLB entries were invalidated: the refault is refused');
    t.ok(m0.requests > before, 'the device had to ask again (its translations were dropped)');
    t.match(kernel.log.join('\n'), /refuses m0: \[0x[0-9a-f]+, 0x[0-9a-f]+\) is revoked by the exporter/);
    await t.rejects(m0.write(va + 3 * PAGE_SIZE, 1, new Uint8Array(PAGE_SIZE)), { code: 'ENODEV' });
    await t.rejects(mm.read(va + 2 * PAGE_SIZE, 4), { code: 'EFAULT' }, 'the CPU mapping is revoked too (SIGBUS)');
    t.equal(ex.pageOf(vma, 0), page0, 'nothing moved');
    await ex.restoreAccess(vma);
    bytesEq(t, (await m0.read(va, 4)).data, pattern(4 * PAGE_SIZE, 1), 'restored: the same bytes, mapped again');
    t.equal(ex.accessRevocations, 1);
    t.equal(ex.accessRestores, 1);
    t.equal(m0.violations().count, 0);
    await mm.munmap(va, 4 * PAGE_SIZE);
  });

  t.test('IOMMU on: an importer that keeps using a revoked range gets IOMMU faults; the bytes stay intact', async (t) => {
    const ex = new BarExporter(kernel, 'exp', { importers: '*', readOnly: false, requireIommu: false, cpuMappable: true });
    const { va, vma } = await ex.mmap(mm, 2);
    ex.fill(vma, 0, pattern(2 * PAGE_SIZE, 2));
    await io0.write(va, 2, pattern(2 * PAGE_SIZE, 3));
    bytesEq(t, await mm.read(va, 2 * PAGE_SIZE), pattern(2 * PAGE_SIZE, 3), 'the importer wrote through its mapping');
    Atomics.store(ctl('io0'), DeviceCtl.invIgnore, 1);
    t.teardown(() => Atomics.store(ctl('io0'), DeviceCtl.invIgnore, 0));
    await ex.revokeAccess(vma);
    t.ok((await io0.counters()).tlb > 0, 'the rogue kept its device TLB entries');
    const faults0 = kernel.domain('io0')!.faults().count;
    await t.rejects(io0.write(va, 2, new Uint8Array(2 * PAGE_SIZE).fill(0xee)), { code: 'EIO', message: /IOMMU fault: device io0/ });
    t.ok(kernel.domain('io0')!.faults().count > faults0, 'reported as an IOMMU fault');
    await ex.restoreAccess(vma);
    bytesEq(t, await mm.read(va, 2 * PAGE_SIZE), pattern(2 * PAGE_SIZE, 3), "the exporter's bytes are intact");
    await mm.munmap(va, 2 * PAGE_SIZE);
  });
});
