// The data-path rows' warm-up (bench/dma_rig.ts settleStream), not their speed:
// after the fault-in pass, a device streams at least SETTLE_COMMANDS commands
// through the steady path (no page request) before its first timed sample, so
// the engine's per-command functions are compiled before the samples (the
// fault-in pass alone left them to tier up inside the first ~8 samples); a
// writer (dma.bounce's acc0) settles in its own direction.
import t from 'tap';
import { settleStream, SETTLE_CMD_BYTES, SETTLE_COMMANDS } from '../../bench/dma_rig.js';
import { ImporterBinding } from '../../src/drivers/importer_binding.js';
import { PROT_READ, PROT_WRITE } from '../../src/kernel/mm.js';
import { DeviceStats } from '../../src/shm/device_ctl.js';
import { PAGE_SIZE } from '../../src/shm/constants.js';
import { MiB } from '../fixtures/kernel_machine.js';
import { nicImport } from '../fixtures/nic_import.js';

t.test('settleStream: SETTLE_COMMANDS commands of the steady path, in the timed stream\'s direction', async (t) => {
  const span = 4 * MiB;
  const { machine, kernel, mm, ex, bind: nic0 } = await nicImport(t, span);
  const m = await ex.mmap(mm, span / PAGE_SIZE);
  const first = ex.pageOf(m.vma, 0);
  const acc = machine.device('acc0').shm.mem!.subarray(first * PAGE_SIZE, first * PAGE_SIZE + span);
  for (let i = 0; i < span; i += 256) acc[i] = (i >>> 8) & 0xff;
  const expect = Buffer.from(acc.slice());
  const stats = machine.device('nic0').shm.stats;
  const r = await settleStream(machine, 'nic0', m.va, span); // faults the export in on its first pass
  t.ok(r.faults > 0, 'the first pass faulted the export in');
  const nicMem = Buffer.from(machine.device('nic0').shm.mem!.buffer, 0, span);
  nicMem.fill(0); // what the warm pass copies must land again
  const ops0 = stats[DeviceStats.dmaOps];
  const again = await settleStream(machine, 'nic0', m.va, span);
  t.equal(again.faults, 0, 'warm: no page request');
  t.ok(stats[DeviceStats.dmaOps] - ops0 >= SETTLE_COMMANDS, `at least ${SETTLE_COMMANDS} commands (${stats[DeviceStats.dmaOps] - ops0})`);
  t.ok(nicMem.equals(expect), "nic0's memory holds the export's bytes");
  t.equal(nic0.violations().count, 0, 'no safety violation');
  // dma.bounce's writer settles in its own direction: acc0 writes its local bytes into process RAM by VA.
  const ram = await mm.mmap({ length: span, prot: PROT_READ | PROT_WRITE });
  const accB = await ImporterBinding.bind(kernel, 'acc0', mm);
  const w = await settleStream(machine, 'acc0', ram, span, { localOff: first * PAGE_SIZE, write: true });
  t.ok(w.bytes >= SETTLE_COMMANDS * SETTLE_CMD_BYTES, `acc0 wrote ${w.bytes} bytes`);
  nicMem.fill(0);
  await settleStream(machine, 'nic0', ram, span); // nic0 reads the RAM buffer back into its memory
  t.ok(nicMem.equals(expect), "the RAM buffer holds acc0's bytes");
  t.equal(accB.violations().count, 0, 'no safety violation (acc0)');
  await accB.close();
});
