// StreamGate (src/workloads/camera_chain/stream_gate.ts): a camera farm's pipelines open their
// windows together once all are set up, and check their frames once all have streamed; a failed
// pipeline opens both lines so nobody waits for it; one pipeline never waits.
import t from 'tap';
import { SOLO_GATE, StreamGate } from '../../src/workloads/camera_chain/stream_gate.js';

/** Resolves to whether `p` settled within a few event-loop turns. */
async function settled(p: Promise<void>): Promise<boolean> {
  let done = false;
  void p.then(() => (done = true));
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
  return done;
}

t.test('the start line holds every pipeline until the last one is set up', async (t) => {
  const g = new StreamGate(3);
  const a = g.atStart();
  const b = g.atStart();
  t.notOk(await settled(a), 'first pipeline waits');
  t.notOk(await settled(b), 'second pipeline waits');
  const c = g.atStart();
  t.ok(await settled(a), 'released by the third');
  t.ok(await settled(b));
  t.ok(await settled(c), 'the last one does not wait');
});

t.test('the finish line is separate: passing the start does not pass it', async (t) => {
  const g = new StreamGate(2);
  await Promise.all([g.atStart(), g.atStart()]);
  const a = g.atFinish();
  t.notOk(await settled(a), 'a pipeline that streamed waits for the other before its checks');
  const b = g.atFinish();
  t.ok(await settled(a));
  t.ok(await settled(b));
});

t.test('open(): a failed pipeline lets the others through both lines', async (t) => {
  const g = new StreamGate(3);
  const a = g.atStart();
  t.notOk(await settled(a));
  g.open();
  t.ok(await settled(a), 'waiter at the start released');
  t.ok(await settled(g.atFinish()), 'the finish line is open too');
});

t.test('one pipeline never waits, however often it passes', async (t) => {
  t.ok(await settled(SOLO_GATE.atStart()));
  t.ok(await settled(SOLO_GATE.atFinish()));
  t.ok(await settled(SOLO_GATE.atStart()), 'the shared solo gate stays open');
  const g = new StreamGate(1);
  t.ok(await settled(g.atStart()));
  t.ok(await settled(g.atFinish()));
});
