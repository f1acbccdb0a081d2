// Shared-memory layouts: offsets assigned once, in order, and u64 round trips.
import t from 'tap';
import { defineLayout, loadU64, storeU64 } from '../../src/shm/layout.js';
import { DeviceCtl, DeviceRegs, INV_BATCH, INV_RANGE_WORDS, NR_QUEUES } from '../../src/shm/device_ctl.js';
import { CqEntry, SqEntry } from '../../src/shm/ring.js';

t.test('offsets follow declaration order and widths', async (t) => {
  const L = defineLayout({ a: { writer: 'main', doc: '' }, b: { words: 3, writer: 'worker', doc: '' }, c: { writer: 'both', doc: '' } });
  t.equal(L.a, 0);
  t.equal(L.b, 1);
  t.equal(L.c, 4);
  t.equal(L.kFieldCount, 5);
  t.equal(L.kBytes, 20);
  t.throws(() => defineLayout({ kBytes: { writer: 'main', doc: '' } }), /reserved/);
});

t.test('the ABI layouts have the sizes the protocols assume', async (t) => {
  t.equal(SqEntry.kBytes, 64, 'SQE is 64 bytes as in NVMe');
  t.equal(CqEntry.kBytes, 16, 'CQE is 16 bytes as in NVMe');
  t.equal(CqEntry.status, 3, 'the phase/status word is stored last');
  t.equal(DeviceRegs.kFieldCount, 2 * NR_QUEUES + 1, 'SQ tail and CQ head doorbells per queue, and the MSI mailbox');
  t.equal(DeviceCtl.fields.invRanges.words, INV_BATCH * INV_RANGE_WORDS);
  const offsets = Object.keys(DeviceCtl.fields).map((k) => (DeviceCtl as unknown as Record<string, number>)[k]);
  t.same([...new Set(offsets)].length, offsets.length, 'no two control fields share a word');
});

t.test('u64 values survive the two-word encoding', async (t) => {
  const v = new Int32Array(2);
  for (const x of [0, 1, 0xffffffff, 0x1_0000_0000, 0x1_2345_6789_abc, Number.MAX_SAFE_INTEGER]) {
    storeU64(v, 0, x);
    t.equal(loadU64(v, 0), x, `0x${x.toString(16)}`);
  }
});
