// A capture device's fault-ahead into its next buffer (workers/runtime/
// next_buffer_ahead.ts): one request from the next buffer's first missing
// page, one fault window at most and never past the buffer; nothing when
// the buffer is all in the TLB or the page-request mailbox is busy.
import t from 'tap';
import { PAGE_SIZE } from '../../src/shm/constants.js';
import { FAULT_WINDOW } from '../../src/shm/tlb_layout.js';
import type { DeviceTlb } from '../../workers/runtime/device_tlb.js';
import { faultAheadInto } from '../../workers/runtime/next_buffer_ahead.js';

/** The two DeviceTlb calls faultAheadInto makes: a set of usable VA pages, and a mailbox that takes one request. */
function fakeTlb(usable: Set<number>) {
  const posted: { va: number; pages: number; write: boolean }[] = [];
  let busy = false;
  const tlb = {
    usable: (vpn: number) => usable.has(vpn),
    prefetch: (va: number, pages: number, write: boolean) => {
      if (busy) return false;
      posted.push({ va, pages, write });
      return true;
    },
  } as unknown as DeviceTlb;
  return { tlb, posted, setBusy: (b: boolean) => (busy = b) };
}

const range = (a: number, b: number) => Array.from({ length: b - a }, (_, i) => a + i);

t.test('one window from the first missing page of the next buffer', async (t) => {
  // The next buffer: VA pages 900..1799, its first 247 still held.
  const { tlb, posted } = fakeTlb(new Set(range(900, 1147)));
  t.ok(faultAheadInto(tlb, 900 * PAGE_SIZE, 900 * PAGE_SIZE, true), 'posted');
  t.same(posted, [{ va: 1147 * PAGE_SIZE, pages: FAULT_WINDOW, write: true }]);
});

t.test('a tail shorter than a window; a buffer all present; a busy mailbox', async (t) => {
  const usable = new Set(range(0, 90));
  const { tlb, posted, setBusy } = fakeTlb(usable);
  t.ok(faultAheadInto(tlb, 0, 100 * PAGE_SIZE, false));
  t.same(posted, [{ va: 90 * PAGE_SIZE, pages: 10, write: false }], 'no further than the buffer');
  for (const p of range(90, 100)) usable.add(p);
  t.notOk(faultAheadInto(tlb, 0, 100 * PAGE_SIZE, false), 'nothing missing, nothing asked');
  usable.delete(5);
  setBusy(true);
  t.notOk(faultAheadInto(tlb, 0, 100 * PAGE_SIZE, false), 'the mailbox holds another request: not posted');
  t.equal(posted.length, 1);
});
