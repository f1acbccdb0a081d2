// Mm.cpuAccessLocked (the CPU's loads and stores in a workload's setup and checks) keeps the code
// optimized in --compare's p2p warm-up through the bounce warm-up, so it does not compile again
// inside p2p's timed window. compareScenario's order (warm p2p, warm bounce, timed p2p) in a child
// node with --trace-opt --trace-deopt. Before the change a callback per direction ("wrong feedback
// cell") and a store's PTE compare never reached in p2p's warm-up ("Insufficient type feedback for
// compare operation") deoptimized it in bounce's warm-up, and it recompiled (6-27 ms) in timed p2p.
import t from 'tap';
import { tracePooledRuns } from '../fixtures/pooled_runs.js';

t.test('hmm-peer warm p2p, warm bounce, timed p2p: cpuAccessLocked is optimized in the warm-ups, not in the timed run', { timeout: 300000 }, async (t) => {
  const out = await tracePooledRuns('hmm-peer', [{ mode: 'p2p', label: 'warm-p2p' }, { mode: 'bounce', label: 'warm-bounce' }, { mode: 'p2p', label: 'timed-p2p' }], ['--trace-deopt', '--trace-opt']);
  t.equal(out.code, 0, out.stderr.trim().slice(-2000));
  const lines = out.lines;
  t.same(out.clean, Array(3).fill('@@clean true'), 'every run passed its checks');
  const timedAt = out.at('timed-p2p');
  t.ok(out.at('warm-bounce') > 0 && timedAt > out.at('warm-bounce'), 'the runs\' markers are in the trace');
  const mine = (l: string) => /(JSFunction|SharedFunctionInfo) cpuAccessLocked[ >]/.test(l);
  const optimized = (l: string) => l.includes('[completed optimizing') && mine(l);
  t.ok(lines.slice(0, timedAt).some(optimized), 'the warm-ups optimized cpuAccessLocked');
  // A re-optimization in the warm-ups is theirs to pay (V8 may tier up late on a loaded machine);
  // the timed window must meet the code it left: no compile, no eager deopt of it there.
  const inTimed = lines.slice(timedAt).filter((l) => mine(l) && (optimized(l) || /bailout \(kind: deopt-eager/.test(l)));
  t.same(inTimed.map((l) => l.replace(/0x[0-9a-f]+ /g, '').slice(0, 160)), [], 'no recompile or eager deopt of cpuAccessLocked in the timed p2p run');
});

// DevMem.ownerFlush is the owner binding itself (a prototype method), not a closure made per
// binding: with a closure every pooled run's migration met a new call target and deoptimized
// invalidateForMigration ("wrong call target") inside its window.
t.test('three pooled hmm-peer p2p runs: invalidateForMigration never meets a new ownerFlush call target', { timeout: 300000 }, async (t) => {
  const out = await tracePooledRuns('hmm-peer', [0, 1, 2].map(() => ({ mode: 'p2p' })), ['--trace-deopt', '--trace-opt']);
  t.equal(out.code, 0, out.stderr.trim().slice(-2000));
  const lines = out.lines;
  t.same(out.clean, Array(3).fill('@@clean true'), 'every run passed its checks');
  t.ok(lines.some((l) => l.includes('[completed optimizing') && l.includes('<JSFunction invalidateForMigration ')), 'invalidateForMigration was optimized');
  const wrong = lines.filter((l) => l.includes('reason: wrong call target') && l.includes('<JSFunction invalidateForMigration '));
  t.same(wrong.length, 0, `no 'wrong call target' deopt of invalidateForMigration (${wrong.length})`);
});
