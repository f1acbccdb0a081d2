// Regression: a mirror WRITE carries exactly npages pages (HMM_DMIRROR_WRITE
// copies npages pages from cmd->ptr). A length that is not npages pages used
// to be rounded up and the rest of the last page DMA'd from a stale bounce
// page: bytes of an earlier, unrelated transfer landed in the target.
import t from 'tap';
import { PAGE_SIZE } from '../../src/shm/constants.js';
import { BarExporter } from '../../src/drivers/bar_exporter.js';
import { PROT_READ, PROT_WRITE } from '../../src/kernel/mm.js';
import { allP2p } from '../../src/kernel/p2p_map.js';
import { KiB, kernelMachine, MiB, mirrorSpec, pattern, openMirrors, bytesEq } from '../fixtures/kernel_machine.js';

const RW = PROT_READ | PROT_WRITE;

t.test('mirror WRITE length', async (t) => {
  const { kernel } = await kernelMachine(t, [mirrorSpec('m0'), mirrorSpec('exp', 1 * MiB, 16 * KiB)], { policy: allP2p });
  const mm = kernel.createMm();
  const [d0] = await openMirrors(t, kernel, mm, ['m0']);
  // An earlier transfer leaves its bytes in the device's bounce pages.
  const secret = await mm.mmap({ length: PAGE_SIZE, prot: RW });
  await d0.write(secret, 1, new Uint8Array(PAGE_SIZE).fill(0xa5));

  t.test('anonymous memory: a short WRITE is EINVAL and writes nothing', async (t) => {
    const va = await mm.mmap({ length: PAGE_SIZE, prot: RW });
    await mm.write(va, new Uint8Array(PAGE_SIZE).fill(0x11));
    await t.rejects(d0.write(va, 1, new Uint8Array(100).fill(0x22)), { code: 'EINVAL', message: /carries 100 bytes, not 4096/ });
    bytesEq(t, await mm.read(va, PAGE_SIZE), new Uint8Array(PAGE_SIZE).fill(0x11), 'the target page is untouched: no stale bounce bytes');
    await t.rejects(d0.write(va, 2, new Uint8Array(PAGE_SIZE)), { code: 'EINVAL' }, 'fewer bytes than npages pages');
    await t.rejects(d0.write(va, 1, new Uint8Array(PAGE_SIZE + 1)), { code: 'EINVAL' }, 'more bytes than npages pages');
    const r = await d0.write(va, 1, pattern(PAGE_SIZE, 3));
    t.equal(r.cpages, 1);
    bytesEq(t, await mm.read(va, PAGE_SIZE), pattern(PAGE_SIZE, 3), 'a whole page writes exactly its bytes');
  });

  t.test('BAR-backed memory: a short WRITE is EINVAL and writes nothing', async (t) => {
    const ex = new BarExporter(kernel, 'exp', { importers: '*', readOnly: false, requireIommu: false, cpuMappable: true });
    const { va, vma } = await ex.mmap(mm, 1);
    ex.fill(vma, 0, new Uint8Array(PAGE_SIZE).fill(0x33));
    await t.rejects(d0.write(va, 1, new Uint8Array(10).fill(0x44)), { code: 'EINVAL' });
    bytesEq(t, await mm.read(va, PAGE_SIZE), new Uint8Array(PAGE_SIZE).fill(0x33), 'the exporter page is untouched');
    await d0.write(va, 1, pattern(PAGE_SIZE, 4));
    bytesEq(t, await mm.read(va, PAGE_SIZE), pattern(PAGE_SIZE, 4), 'a whole page reaches the exporter peer to peer');
    await mm.munmap(va, PAGE_SIZE);
  });

  t.test('unaligned address or no pages: EINVAL (the ioctl checks)', async (t) => {
    const va = await mm.mmap({ length: PAGE_SIZE, prot: RW });
    await t.rejects(d0.read(va + 8, 1), { code: 'EINVAL' });
    await t.rejects(d0.read(va, 0), { code: 'EINVAL' });
    await t.rejects(d0.write(va, 0, new Uint8Array(0)), { code: 'EINVAL' });
  });
});
