// The openMirrors fixture (test/fixtures/kernel_machine.ts): a mirror that
// opened before a later open failed is still closed in teardown, so a test
// that fails halfway through its setup leaves no binding (and no notifier) behind.
import t from 'tap';
import { kernelMachine, mirrorSpec, openMirrors } from '../fixtures/kernel_machine.js';

t.test('an open that fails halfway still closes the mirrors opened before it', async (t) => {
  const { kernel } = await kernelMachine(t, [mirrorSpec('m0'), { name: 'x0', kind: 'x-stress', memBytes: 1024 * 1024, barBytes: 64 * 1024, props: {} }]);
  const mm = kernel.createMm();
  const teardowns: (() => unknown)[] = [];
  await t.rejects(openMirrors({ teardown: (fn) => teardowns.push(fn) }, kernel, mm, ['m0', 'x0']), /not a mirror device/, 'x0 is not a mirror: the second open fails');
  t.equal(mm.notifiers.subscribers.length, 1, "m0's binding is live before teardown");
  for (const fn of teardowns) await fn();
  t.equal(mm.notifiers.subscribers.length, 0, "teardown closed m0's binding: its notifier is gone");
});
