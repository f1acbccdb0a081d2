// A prefetch's page-request slice on the device's trace track. A prefetch
// posted during one DMA command can be collected by a fault of the next
// command (the stress importer: a refault's request covered the prefetched
// pages, so the command ended with the prefetch still in flight). Its slice
// must then start no earlier than that fault: from its post it would start
// inside the first command's DMA slice and end inside the second's, slices
// that overlap without nesting (nestTracks gave the device track an overlap
// lane; test/trace/trace_stress.test.ts failed once on it).
import t from 'tap';
import { PAGE_SIZE } from '../../src/shm/constants.js';
import { allocTraceRing, decodeRecords, TraceEvent, TraceRingReader, TraceWriter, traceSink } from '../../src/shm/trace_ring.js';
import { stubTlb } from '../fixtures/stub_kernel.js';

t.test('a prefetch collected by a later fault is traced from that fault, not from its post', async (t) => {
  const ring = allocTraceRing(64);
  traceSink.w = new TraceWriter(ring);
  t.teardown(() => (traceSink.w = null));
  const k = stubTlb();
  const ahead = 64 * PAGE_SIZE;
  k.hold.add(ahead); // still in flight when the command that posted it ends
  t.ok(k.tlb.prefetch(ahead, 4, false), 'prefetch posted (command A)');
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 2); // command A copies on, then ends
  k.hold.delete(ahead);
  k.serve(); // its reply lands between the commands
  const faultAt = traceSink.w.now();
  t.equal(k.tlb.fault(1024 * PAGE_SIZE, 1, false), 0, 'command B faults elsewhere (and collects the prefetch)');
  const slices: { t: number; va: number }[] = [];
  decodeRecords(new TraceRingReader(ring).drainRaw(), (r) => {
    if (r.code === TraceEvent.PageRequest) slices.push({ t: r.t, va: r.args[0] });
  });
  t.same(slices.map((s) => s.va).sort((a, b) => a - b), [ahead, 1024 * PAGE_SIZE], 'the prefetch and the fault each traced');
  for (const s of slices) t.ok(s.t >= faultAt, `page request 0x${s.va.toString(16)} starts at or after the fault (it starts ${((faultAt - s.t) * 1000).toFixed(1)} us before)`);
});
