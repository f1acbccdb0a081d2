// Faults the camera chain must catch: a camera that ignores invalidations (the safety
// checker sees it) and one corrupted byte (named by frame and offset, in both modes).
import t from 'tap';
import { compareScenario, runScenario } from '../../src/scenario/run.js';
import { assertChecks } from '../../src/trace/summary.js';
import { VerifyError } from '../../src/errors.js';
import { smallChain } from '../fixtures/camera_chain.js';

t.test('a camera that ignores invalidations fails the run: the safety checker sees it (IOMMU off)', async (t) => {
  const s = await smallChain((s) => Object.assign(s.devices[0], { 'x-ignore-invalidations': true }));
  // Its stale writes may also land in cc0's ring, which then fails the run with a device
  // error: the run then fails as the safety check, which names the cause first.
  const r = await runScenario(s).catch((e: Error) => e);
  if (r instanceof Error) {
    t.type(r, VerifyError);
    t.match(r.message, /^check failed: safety.*: cam0: \d+ violation\(s\) \(remapped.*; then device cc0/);
    return;
  }
  const safety = r.accounting.checks.find((c) => c.name.startsWith('safety'))!;
  t.equal(safety.ok, false);
  t.match(safety.detail, /^cam0: \d+ violation\(s\) \(remapped/);
  t.throws(() => assertChecks(r), VerifyError);
});

t.test('one corrupted byte is detected and named by frame and offset, in both modes', async (t) => {
  const s = await smallChain((s) => Object.assign(s.devices[1].props, { 'x-corrupt-frame': 4, 'x-corrupt-offset': 70001 }));
  for (const r of await compareScenario(s)) {
    const c = r.accounting.checks[0];
    t.equal(c.ok, false, r.mode);
    t.match(c.detail, /^1 of 6 frame\(s\) differ:\n {2}frame 4: byte 70001 is 0x[0-9a-f]+, reference 0x[0-9a-f]+ \(1 byte\(s\) differ\)$/);
    t.throws(() => assertChecks(r), VerifyError);
  }
});
