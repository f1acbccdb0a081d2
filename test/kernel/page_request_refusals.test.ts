// PageRequestRefusals: the kernel's line is a failure's reason only for the page and errno the
// device's message ends with, and only while no page request answered that page since.
import t from 'tap';
import { PageRequestRefusals } from '../../src/kernel/page_request_refusals.js';
import { failedAt } from '../../src/devices/va_failure.js';
import { PAGE_SIZE } from '../../src/shm/constants.js';

const A = 0x7f00_0000_0000;
const msg = (va: number, errno: string) => `dev0: write of va [0x${A.toString(16)}, +64k) ${failedAt(va, errno)}`;

t.test('matches the failed page and errno, newest first', async (t) => {
  const r = new PageRequestRefusals();
  r.refused(A, A + 4 * PAGE_SIZE, 'EPERM', 'L1');
  r.refused(A + 8 * PAGE_SIZE, A + 12 * PAGE_SIZE, 'EFAULT', 'L2');
  t.equal(r.reasonFor(msg(A + PAGE_SIZE + 12, 'EPERM')), 'L1', 'a page of the refused range, the same errno');
  t.equal(r.reasonFor(msg(A + 9 * PAGE_SIZE, 'EFAULT')), 'L2');
  t.equal(r.reasonFor(msg(A + PAGE_SIZE, 'ETIMEDOUT')), null, "another errno (the device's own timeout): not the refusal's doing");
  t.equal(r.reasonFor(msg(A + 4 * PAGE_SIZE, 'EPERM')), null, 'a page past the refused range');
  t.equal(r.reasonFor('dev0: va 0x7f0000000000 invalidated 10000 times in one transfer'), null, 'a failure that names no errno');
  t.equal(r.reasonFor('dev0: CAPTURE of 3 bytes, width 1'), null, 'a bad argument');
  r.refused(A, A + 2 * PAGE_SIZE, 'EPERM', 'L3');
  t.equal(r.reasonFor(msg(A, 'EPERM')), 'L3', 'the newest refusal of the page');
});

t.test('a page request answered for a refused page drops its line', async (t) => {
  const r = new PageRequestRefusals();
  r.refused(A, A + 4 * PAGE_SIZE, 'EBUSY', 'L1');
  const asked = new Uint8Array(8);
  asked[6] = 1;
  r.answered(A, A + 8 * PAGE_SIZE, asked);
  t.equal(r.reasonFor(msg(A, 'EBUSY')), 'L1', 'a sparse request that did not ask for its pages keeps it');
  r.answered(A + 3 * PAGE_SIZE, A + 5 * PAGE_SIZE);
  t.equal(r.reasonFor(msg(A, 'EBUSY')), null, 'one answered over a page of it drops it (a later EBUSY give-up is the device\'s)');
  r.refused(A, A + PAGE_SIZE, 'EPERM', 'L2');
  r.clear();
  t.equal(r.reasonFor(msg(A, 'EPERM')), null, 'a new binding starts with none');
});
