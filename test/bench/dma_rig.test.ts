// The data-path rows' warm-up (bench/dma_rig.ts settleStream), not their speed:
// after the fault-in pass, a device streams at least SETTLE_COMMANDS commands
// through the steady path (no page request) before its first timed sample, so
// the engine's per-command functions are compiled before the samples (the
// fault-in pass alone left them to tier up inside the first ~8 samples).
import t from 'tap';
import { settleStream, SETTLE_COMMANDS } from '../../bench/dma_rig.js';
import { Machine } from '../../src/devices/machine.js';
import { BarExporter } from '../../src/drivers/bar_exporter.js';
import { ImporterBinding } from '../../src/drivers/importer_binding.js';
import { Kernel } from '../../src/kernel/kernel.js';
import { DeviceStats } from '../../src/shm/device_ctl.js';
import { PAGE_SIZE } from '../../src/shm/constants.js';

const MiB = 1024 * 1024;

t.test('settleStream: SETTLE_COMMANDS commands of the steady path, the exporter\'s bytes read', async (t) => {
  const span = 4 * MiB;
  const machine = await Machine.create({
    ramBytes: 4 * MiB,
    timeoutMs: 20000,
    devices: [
      { name: 'acc0', kind: 'accelerator', memBytes: span + MiB, barBytes: span, props: {} },
      { name: 'nic0', kind: 'nic', memBytes: span, barBytes: 0, props: {} },
    ],
  });
  t.teardown(() => machine.shutdown());
  await machine.start();
  const kernel = Kernel.boot(machine, { policy: () => ({ map: 'bus-addr', distance: 2, reason: 'test: one switch' }), check: true });
  const mm = kernel.createMm();
  const ex = new BarExporter(kernel, 'acc0', { importers: '*', readOnly: false, requireIommu: false, cpuMappable: false });
  const nic0 = await ImporterBinding.bind(kernel, 'nic0', mm);
  const m = await ex.mmap(mm, span / PAGE_SIZE);
  const first = ex.pageOf(m.vma, 0);
  const acc = machine.device('acc0').shm.mem!.subarray(first * PAGE_SIZE, first * PAGE_SIZE + span);
  for (let i = 0; i < span; i += 256) acc[i] = (i >>> 8) & 0xff;
  const stats = machine.device('nic0').shm.stats;
  const r = await settleStream(machine, 'nic0', m.va, span); // faults the export in on its first pass
  t.ok(r.faults > 0, 'the first pass faulted the export in');
  const ops0 = stats[DeviceStats.dmaOps];
  const again = await settleStream(machine, 'nic0', m.va, span);
  t.equal(again.faults, 0, 'warm: no page request');
  t.ok(stats[DeviceStats.dmaOps] - ops0 >= SETTLE_COMMANDS, `at least ${SETTLE_COMMANDS} commands (${stats[DeviceStats.dmaOps] - ops0})`);
  t.ok(Buffer.from(machine.device('nic0').shm.mem!.buffer, 0, span).equals(Buffer.from(acc.buffer, acc.byteOffset, span)), "nic0's memory holds the export's bytes");
  t.equal(nic0.violations().count, 0, 'no safety violation');
  await nic0.close();
  await mm.exit();
});
