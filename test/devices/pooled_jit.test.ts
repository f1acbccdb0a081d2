// A pooled device worker keeps its optimized code across reset (workers/runtime/thread_machine.ts):
// three camera-chain runs on one DeviceWorkerPool, in a child node with --trace-deopt --trace-opt
// (V8 flags are process-wide, so they reach the device threads). Before the change every reset's
// collection deoptimized the device TLB and DMA code that embedded the old machine's objects
// ("marking dependent code ... reason: weak objects" for DeviceTlb.block, word, usable, runPages,
// verifyRun, ...: 7-10 a run at 8 frames), and the next run compiled them again inside its window.
import t from 'tap';
import { tracePooledRuns } from '../fixtures/pooled_runs.js';

/** Device-side hot functions (workers/runtime/device_tlb.ts, dma_engine.ts, va_space.ts); no main-thread function has these names. */
const DEVICE_HOT = ['block', 'word', 'usable', 'runPages', 'verifyRun', 'installReply', 'fillMask', 'missingSpan', 'transfer', 'chunks', 'copyPieces', 'copyGathered', 'installPosted', 'takeMapPosts'];

t.test('three pooled runs: the device TLB and DMA code compiled in the first is never deoptimized for a collected machine', { timeout: 300000 }, async (t) => {
  const out = await tracePooledRuns('camera-chain', [0, 1, 2].map(() => ({ mode: 'p2p', frames: 8 })), ['--trace-deopt', '--trace-opt']);
  t.equal(out.code, 0, out.stderr.trim().slice(-2000));
  const lines = out.lines;
  t.same(out.clean, Array(3).fill('@@clean true'), 'every run passed its checks');
  t.ok(out.at('1') > 0, 'the second run\'s marker is in the trace');
  const firstRun = lines.slice(0, out.at('1'));
  const compiled = DEVICE_HOT.filter((f) => firstRun.some((l) => l.includes('[completed optimizing') && l.includes(`<JSFunction ${f} `)));
  t.ok(compiled.length >= 3, `the first run optimized device code to lose (${compiled.join(', ')})`);
  const weak = lines.filter((l) => l.includes('reason: weak objects')).map((l) => /SharedFunctionInfo ([^>]*)>/.exec(l)?.[1] ?? l);
  t.same(weak.filter((f) => DEVICE_HOT.includes(f)), [], `no device function deoptimized for a collected machine (all 'weak objects' deopts: ${weak.join(', ') || 'none'})`);
});

// The driver-posted translations (DeviceTlb.installPosted, takeMapPosts' sink) are compiled once per
// device thread, not once per run: as a per-instance arrow field every run's DeviceTlb made a new
// closure, and V8 compiled it again (TurboFan, 2-5 ms on a helper thread) inside every p2p window of
// hmm-peer, whose accelerator installs each migrated chunk's post.
t.test('four pooled hmm-peer runs: the driver-post install is compiled once, not once a run', { timeout: 300000 }, async (t) => {
  const out = await tracePooledRuns('hmm-peer', [0, 1, 2, 3].map(() => ({ mode: 'p2p', frames: 1024 })), ['--trace-opt', '--trace-deopt']);
  t.equal(out.code, 0, out.stderr.trim().slice(-2000));
  const lines = out.lines;
  t.same(out.clean, Array(4).fill('@@clean true'), 'every run passed its checks');
  // The one accelerator thread installs the posts (the NIC's TLB has none): one compile in all, whichever run made it hot.
  // A compile after a deopt is a re-optimization (a path not yet seen when the first compile ran,
  // as a loaded machine's timing may leave it; seen in 2 of 22 runs two at a time): only a compile
  // with no deopt before it is a fresh closure's. The old arrow field: 2-3 compiles, no deopt.
  const runs = lines.filter((l) => l.includes('[completed optimizing') && l.includes('<JSFunction installPosted ')).length;
  const deopts = lines.filter((l) => (l.includes('[bailout') || l.includes('marking dependent code')) && / installPosted[ >]/.test(l)).length;
  t.ok(runs >= 1 && runs - deopts <= 1, `installPosted optimized once in four runs, not counting re-optimizations (${runs} compiles, ${deopts} deopts)`);
});
