// va-prefault (workers/runtime/va_space.ts prefault, ImporterBinding.prefault): a device
// translates a range before its first use with the page requests a fault makes, one
// window at a time and no read-ahead; a refusal keeps the kernel's errno and says what,
// where and why (device, VA range, failing page, errno, the kernel's reason).
import t from 'tap';
import { BarExporter } from '../../src/drivers/bar_exporter.js';
import { PAGE_SIZE } from '../../src/shm/constants.js';
import { FAULT_WINDOW } from '../../src/shm/tlb_layout.js';
import { ImporterBinding } from '../../src/drivers/importer_binding.js';
import { nicImport } from '../fixtures/nic_import.js';
import { vaCounters } from '../../src/workloads/accounting.js';

const WINDOW = FAULT_WINDOW * PAGE_SIZE;
const hex = (n: number) => `0x${n.toString(16)}`;

t.test('va-prefault', async (t) => {
  const span = 4 * WINDOW;
  const acc1 = { name: 'acc1', kind: 'accelerator', memBytes: span, barBytes: span, props: {} } as const;
  const { machine, kernel, mm, ex, bind, nic } = await nicImport(t, span, [acc1]);

  t.test('translates the range window by window, nothing past it and no read-ahead', async (t) => {
    const { va } = await ex.mmap(mm, span / PAGE_SIZE);
    const c0 = await vaCounters(machine, nic);
    t.equal(await bind.prefault(va, 3 * WINDOW, true), 3 * FAULT_WINDOW, 'every page of the range faulted in');
    const c = await vaCounters(machine, nic);
    t.equal(c.faults - c0.faults, 3, 'one page request per window');
    t.equal(c.prefetchHits - c0.prefetchHits, 0, 'none of them asked ahead (a read-ahead would have made the 2nd and 3rd prefetch hits)');
    t.equal(c.tlb - c0.tlb, 3 * FAULT_WINDOW, "the TLB gained the range's pages and none past it");
    t.equal(await bind.prefault(va, 3 * WINDOW, true), 0, 'translated already: no page asked again');
    await mm.munmap(va, span);
  });

  t.test('a range the exporter refuses: the real errno, and what, where and why', async (t) => {
    const only = new BarExporter(kernel, 'acc1', { importers: ['acc0'], readOnly: false, requireIommu: false, cpuMappable: false });
    const { va } = await only.mmap(mm, 8);
    const r = await machine.race(nic.handle.cmd({ op: 'va-prefault', va, len: 8 * PAGE_SIZE, write: true }));
    t.equal(r.errno, 'EPERM', "the reply carries the kernel's errno (not a blanket EFAULT)");
    const range = `\\[${hex(va)}, ${hex(va + 8 * PAGE_SIZE)}\\)`;
    await t.rejects(
      bind.prefault(va, 8 * PAGE_SIZE, true),
      new RegExp(`^device nic0 reported an error: nic0: prefault \\(write\\) of va ${range} failed at va ${hex(va)}: EPERM; kernel: nic0: page request ${range} refused: EPERM: .*refuses nic0: not an allowed importer \\(policy importers: \\[acc0\\]\\)$`),
    );
    await mm.munmap(va, 8 * PAGE_SIZE);
  });

  t.test('a device not bound to a process refuses with EINVAL, naming itself', async (t) => {
    const r = await machine.race(machine.device('acc1').handle.cmd({ op: 'va-prefault', va: 0x7f00_0000_0000, len: PAGE_SIZE, write: true }));
    t.same(r, { errno: 'EINVAL', message: 'acc1: va-prefault on a device not bound to a process' });
  });
});

// iommu_sva_unbind_device(): once a binding is closed the device has no process: a VA access
// fails at once instead of posting page requests nobody serves (a timeout naming the wrong
// cause), and the device can be bound again.
t.test('after unbind: EINVAL at once, and the device binds again', async (t) => {
  const { machine, kernel, mm, ex, bind, nic } = await nicImport(t, WINDOW);
  const { va } = await ex.mmap(mm, FAULT_WINDOW);
  await bind.close();
  const r = await machine.race(nic.handle.cmd({ op: 'va-prefault', va, len: PAGE_SIZE, write: true }));
  t.equal(r.errno, 'EINVAL', 'the translation fails (it used to post a page request nobody served)');
  t.match('message' in r ? r.message : '', /^nic0: prefault \(write\) of va .* EINVAL$/, 'naming the device and the range');
  const s = await machine.race(nic.handle.cmd({ op: 'va-stream', va, len: PAGE_SIZE, cmdBytes: PAGE_SIZE, passes: 1 }));
  t.equal(s.errno, 'EIO', "a device command's DMA by VA fails");
  t.match('message' in s ? s.message : '', /^nic0: .*EINVAL/, 'with the translation\'s EINVAL, naming the device');
  const again = await ImporterBinding.bind(kernel, 'nic0', mm);
  t.teardown(() => again.close());
  t.equal(await again.prefault(va, WINDOW, true), FAULT_WINDOW, 'the new binding translates the export');
});
