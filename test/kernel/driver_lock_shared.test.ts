// DriverLock's shared mode (down_read, used for page faults in device-special
// VMAs under mmap_lock): readers share it, a writer waits for them, and a
// reader arriving while a writer waits queues behind it (no writer starvation).
import t from 'tap';
import { DriverLock } from '../../src/kernel/driver_lock.js';

const tick = () => new Promise<void>((r) => setImmediate(r));

t.test('readers share, writers exclude, FIFO hand-over', async (t) => {
  const l = new DriverLock('test');
  await l.readLock();
  await l.readLock();
  t.ok(l.isHeld, 'read-held counts as held');
  l.assertHeld();
  t.notOk(l.tryLock(), 'no exclusive lock while readers hold it');
  const order: string[] = [];
  const w = l.lock().then(() => order.push('writer'));
  const r3 = l.readLock().then(() => order.push('reader 3'));
  await tick();
  t.same(order, [], 'the writer waits for the readers; a later reader waits behind the writer');
  l.readUnlock();
  await tick();
  t.same(order, [], 'one reader still holds it');
  l.readUnlock();
  await w;
  await tick();
  t.same(order, ['writer'], 'the writer got it when the last reader left');
  l.unlock();
  await r3;
  t.same(order, ['writer', 'reader 3']);
  t.ok(l.isHeld);
  l.readUnlock();
  t.notOk(l.isHeld);
  t.throws(() => l.readUnlock(), /read unlock of a lock not read-held/);
  t.throws(() => l.unlock(), /unlock of a lock not held/);
});

t.test('paths that change PTEs assert the exclusive mode: a read holder is not enough', async (t) => {
  const l = new DriverLock('mmap_lock');
  t.throws(() => l.assertWriteHeld(), /not held exclusively/, 'not held at all');
  await l.readLock();
  l.assertHeld();
  t.throws(() => l.assertWriteHeld(), /not held exclusively \(mmap_assert_write_locked\)/, 'read-held');
  l.readUnlock();
  await l.lock();
  t.doesNotThrow(() => l.assertWriteHeld(), 'held exclusively');
  l.unlock();
});
