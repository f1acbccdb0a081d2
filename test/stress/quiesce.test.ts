// StressRig.quiesce(): stopping the importers waits out the burst in flight
// (the tests that write pages "with the devices idle" rely on it), and an
// importer that does not come round its loop is named, not waited for.
import t from 'tap';
import { StressRig } from '../../src/stress/rig.js';
import { bufferPlan } from '../../src/stress/schedule.js';
import { holdReplies } from '../fixtures/hold_replies.js';
import { until } from '../fixtures/until.js';

const moved = (rig: StressRig, i: number): number => rig.devStat(i, 'pagesRead') + rig.devStat(i, 'pagesWritten') + rig.devStat(i, 'ioErrors');

t.test('quiesce waits out a burst held on its page request, names it meanwhile, and no page moves after', async (t) => {
  const rig = await StressRig.create({ importers: 2, iommu: false, ackTimeoutMs: 2000, bufs: bufferPlan(2), seed: 3, controlTimeoutMs: 10000 });
  t.teardown(() => rig.shutdown());
  // Every buffer is fresh, so imp0's first burst faults and sleeps on its request.
  const release = holdReplies(rig.bindings[0]);
  rig.startStreaming();
  // Its request waits at most 5 s in the device (then the burst fails): quiesce is asked well before.
  await until("imp0's first page request", () => rig.bindings[0].requestPending(), 10000);
  t.equal(moved(rig, 0), 0, 'imp0 is still in its first burst');
  await t.rejects(rig.quiesce(300), /\bimp0\b[^]*did not come round the device loop within 300 ms/, 'the held importer is named (imp1 too, if a loaded host starved it)');
  release();
  await rig.quiesce(5000);
  t.ok(moved(rig, 0) > 0, 'imp0 finished the burst it was in');
  const after = [moved(rig, 0), moved(rig, 1)];
  await new Promise((r) => setTimeout(r, 100));
  t.same([moved(rig, 0), moved(rig, 1)], after, 'no importer moved a page once quiesce resolved');
});

t.test('an importer that dies while quiesce waits for it is reported at once as crashed, with its error', async (t) => {
  const rig = await StressRig.create({ importers: 2, iommu: false, ackTimeoutMs: 2000, bufs: bufferPlan(2), seed: 3, controlTimeoutMs: 10000 });
  t.teardown(() => rig.shutdown());
  // imp0 sleeps on its first page request, so it cannot come round before it dies.
  const release = holdReplies(rig.bindings[0]);
  t.teardown(release);
  rig.startStreaming();
  await until("imp0's first page request", () => rig.bindings[0].requestPending(), 10000);
  const waiting = rig.quiesce(20000);
  const t0 = performance.now();
  // The thread ends under the device (not through DeviceWorker.terminate): its handle records the exit.
  await rig.machine.device('imp0').handle.thread.worker.terminate();
  await t.rejects(waiting, /\bimp0 crashed while quiesced \(device imp0 exited: worker exited with code/, 'the dead importer is named as crashed, with the worker error');
  t.ok(performance.now() - t0 < 20000, 'quiesce did not wait out its timeout for the dead importer');
  t.notMatch(await waiting.catch((e: Error) => e.message), /did not come round/, 'imp1 came round: nobody is called hung');
});
