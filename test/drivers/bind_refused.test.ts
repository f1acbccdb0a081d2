// A bind the device refuses (bound already) unwinds what the binding set up, as a driver's
// open() does on error: the bound binding stays its device memory's ownerFlush (else its
// own-migration flushes went to the refused one, which holds nothing, and the device kept
// translations of migrated pages), and the refused one is no safety source.
import t from 'tap';
import { ImporterBinding } from '../../src/drivers/importer_binding.js';
import { PAGE_SIZE } from '../../src/shm/constants.js';
import { nicImport } from '../fixtures/nic_import.js';

t.test('a refused bind leaves the bound binding as ownerFlush and adds no safety source', async (t) => {
  const { kernel, mm, bind, ex, stream } = await nicImport(t, 64 * PAGE_SIZE);
  const sources = kernel.safetySources.length;
  await t.rejects(ImporterBinding.bind(kernel, 'nic0', mm), /EBUSY: nic0: .*already bound to a process/);
  t.equal(kernel.devmem('nic0').ownerFlush, bind, "the bound binding still gets its device memory's own-migration flushes");
  t.equal(kernel.safetySources.length, sources, 'the refused binding is not checked for violations');
  // The bound binding still serves nic0: a stream over an export faults in and completes.
  const { va } = await ex.mmap(mm, 4);
  await stream({ va, len: 4 * PAGE_SIZE, cmdBytes: 4 * PAGE_SIZE });
  t.equal(bind.violations().count, 0, 'and its checker saw no violation');
  await mm.munmap(va, 4 * PAGE_SIZE);
});
