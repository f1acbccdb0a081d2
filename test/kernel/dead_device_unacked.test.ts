// A post that timed out leaves its ranges unacked (DeviceInvalidator.hasUnacked),
// re-sent with every later batch and keeping the importer's holders-only skip
// off (ImporterBinding.holdsNothingIn). Once the device's worker is gone
// (crashed, exited) it can touch no memory again: the ranges are dropped. A
// device that failed otherwise (a control call timed out) may still run: its
// ranges keep riding along.
import t from 'tap';
import { DeviceInvalidator } from '../../src/kernel/invalidate_broadcast.js';
import { DeviceCtl } from '../../src/shm/device_ctl.js';
import { DeviceError } from '../../src/errors.js';

/** An invalidator over a slot no worker serves, with a failure its test fires. */
function silentDevice(): { inv: DeviceInvalidator; fail: (e: Error) => void; timeouts: number[] } {
  const ctl = new Int32Array(new SharedArrayBuffer(DeviceCtl.kBytes));
  const listeners: ((e: Error) => void)[] = [];
  const timeouts: number[] = [];
  const inv = new DeviceInvalidator('d0', ctl, 20, (_dev, seq) => timeouts.push(seq), (cb) => {
    listeners.push(cb);
    return () => listeners.splice(listeners.indexOf(cb), 1);
  });
  return { inv, fail: (e) => [...listeners].forEach((cb) => cb(e)), timeouts };
}

/** Atomics.waitAsync's timeout holds no event-loop handle: keep the process up until it fires. */
async function timedOut(p: Promise<void>): Promise<void> {
  const keep = setInterval(() => undefined, 1000);
  try {
    await p;
  } finally {
    clearInterval(keep);
  }
}

for (const what of ['crashed', 'exited'] as const) {
  t.test(`a device that timed out and then ${what} keeps no unacked ranges`, async (t) => {
    const { inv, fail, timeouts } = silentDevice();
    await timedOut(inv.invalidate([{ start: 0x1000, end: 0x2000 }]));
    t.equal(timeouts.length, 1, 'the post timed out');
    t.ok(inv.hasUnacked, 'its range is unacked');
    fail(new DeviceError('d0', what, 'test'));
    t.notOk(inv.hasUnacked, 'gone: nothing left to re-send');
  });
}

t.test('a device that failed by a control-call timeout may still run: its unacked ranges stay', async (t) => {
  const { inv, fail } = silentDevice();
  await timedOut(inv.invalidate([{ start: 0x1000, end: 0x2000 }]));
  t.ok(inv.hasUnacked, 'its range is unacked');
  fail(new DeviceError('d0', 'timeout', 'test'));
  t.ok(inv.hasUnacked, 'still re-sent with the next batch');
});
