// Property (fast-check): any small schedule of kernel operations, run under a
// streaming importer with every check on, breaks nothing. When it does, fast-check
// shrinks the schedule to a minimal failing one and prints it; replay it with
// runStress({ schedule }) (each op names its kind, buffer, pages and device).
import t from 'tap';
import fc from 'fast-check';
import { runStress } from '../../src/stress/run.js';
import { bufferPlan, type Op, type OpKind } from '../../src/stress/schedule.js';

const IMPORTERS = 1;
const bufs = bufferPlan(IMPORTERS);
const ANON: OpKind[] = ['migrate-dev', 'migrate-ram', 'munmap', 'mprotect', 'dontneed', 'notifier-insert', 'notifier-remove', 'iotlb-flush', 'slow-device', 'inv-storm'];
const BAR: OpKind[] = ['revoke', 'slot-close', 'munmap', 'notifier-insert', 'notifier-remove', 'slow-device', 'inv-storm'];

/** One operation valid for its buffer. */
const opArb: fc.Arbitrary<Op> = fc.integer({ min: 0, max: bufs.length - 1 }).chain((buf) => {
  const b = bufs[buf];
  return fc.record({
    step: fc.constant(0),
    kind: fc.constantFrom(...(b.kind === 'anon' ? ANON : BAR)),
    buf: fc.constant(buf),
    page: fc.integer({ min: 0, max: b.npages - 1 }),
    npages: fc.integer({ min: 1, max: 8 }),
    dev: fc.constant(0),
    gapUs: fc.integer({ min: 0, max: 300 }),
  }).map((o) => ({ ...o, npages: Math.min(o.npages, b.npages - o.page) }));
});

t.test('any small schedule: no violation (shrinks to a minimal failing schedule)', async (t) => {
  let runs = 0;
  await fc.assert(
    fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: 12 }), fc.boolean(), async (schedule, iommu) => {
      runs++;
      const r = await runStress({ seed: 1, ops: schedule.length, importers: IMPORTERS, iommu, schedule, gapMaxUs: 300, ackTimeoutMs: 2000 });
      if (r.violationCount > 0) throw new Error(`${r.violationCount} violation(s), first: ${JSON.stringify(r.violations[0])}`);
      return r.ops === schedule.length;
    }),
    { numRuns: 3, seed: 1311 },
  );
  t.equal(runs, 3);
});
