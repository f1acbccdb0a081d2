// NIC_OP_PREFETCH (an ODP region's advise_mr PREFETCH, workers/nic.ts) and
// DeviceTlb.collectAhead: the NIC asks for the translations it lacks and
// completes at once; the next SEND there is answered by that request; an
// invalidation of the range before the reply is used voids it (the SEND
// asks again, bytes still exact); an unanswered request is left in flight.
import t from 'tap';
import { setTimeout as sleep } from 'node:timers/promises';
import { Machine } from '../../src/devices/machine.js';
import { BarExporter } from '../../src/drivers/bar_exporter.js';
import { HostQueue } from '../../src/drivers/host_queue.js';
import { ImporterBinding } from '../../src/drivers/importer_binding.js';
import { allP2p } from '../../src/kernel/p2p_map.js';
import { Kernel } from '../../src/kernel/kernel.js';
import { NIC_HOST_QID, NIC_OP_PREFETCH, NIC_OP_SEND } from '../../src/devices/nic_abi.js';
import { PAGE_SIZE } from '../../src/shm/constants.js';
import { CqStatus, type Completion } from '../../src/shm/ring.js';
import { PRI_GROUPS } from '../../src/shm/tlb_layout.js';
import { stubTlb } from '../fixtures/stub_kernel.js';
import { fnv1aReference } from '../../src/workloads/reference/checksum.js';
import { vaCounters } from '../../src/workloads/accounting.js';
import { KiB, MiB, pattern } from '../fixtures/kernel_machine.js';
import { completion } from '../fixtures/host_completion.js';

t.test('DeviceTlb.collectAhead against a stub kernel', async (t) => {
  // The stub kernel answers only when told (serve()), not while the TLB looks.
  const k = stubTlb({ serveOnCheck: false });
  const tlb = k.tlb;
  const serve = (gen: number) => {
    k.setGen(gen);
    k.serve();
  };
  const va = 256 * PAGE_SIZE;

  t.equal(tlb.collectAhead(), true, 'nothing in flight: the mailbox is free');
  // Prefetches fill every group but the one kept for a fault.
  const others = Array.from({ length: PRI_GROUPS - 2 }, (_, i) => (4096 + 1024 * i) * PAGE_SIZE);
  t.ok([va, ...others].every((w) => tlb.prefetch(w, 4, false)), 'prefetches posted');
  t.equal(tlb.collectAhead(), false, 'not answered yet: still in flight, no group left for another prefetch');
  t.equal(tlb.size, 0);
  serve(7);
  t.equal(tlb.collectAhead(), true, 'answered: collected');
  t.equal(tlb.size, 4 * (PRI_GROUPS - 1), 'and installed');
  t.equal(tlb.gen(va / PAGE_SIZE + 3), 7);
  t.equal(tlb.collectAhead(), true, 'collected once');

  // An invalidation of the range between the reply and the collection voids it.
  const va2 = 1024 * PAGE_SIZE;
  tlb.prefetch(va2, 2, false);
  serve(8);
  k.invalidate(va2, va2 + PAGE_SIZE);
  t.equal(tlb.collectAhead(), true);
  t.equal(tlb.usable(va2 / PAGE_SIZE + 1, false), false, 'a raced reply is not installed, not even its pages the invalidation missed');
  t.equal(k.log.length, PRI_GROUPS, 'each prefetch answered once');
});

t.test('NIC PREFETCH through the kernel', async (t) => {
  const machine = await Machine.create({
    ramBytes: 16 * MiB,
    timeoutMs: 10000,
    devices: [
      { name: 'acc0', kind: 'accelerator', memBytes: 4 * MiB, barBytes: 2 * MiB, props: {} },
      { name: 'nic0', kind: 'nic', memBytes: 256 * KiB, barBytes: 0, props: {} },
    ],
  });
  t.teardown(() => machine.shutdown());
  const nic = machine.device('nic0');
  const q = await HostQueue.create(machine, nic, NIC_HOST_QID, 8);
  await machine.start();
  const kernel = Kernel.boot(machine, { check: true, policy: allP2p });
  const mm = kernel.createMm();
  const ex = new BarExporter(kernel, 'acc0', { importers: ['nic0'], readOnly: true, requireIommu: false, cpuMappable: false });
  const bind = await ImporterBinding.bind(kernel, 'nic0', mm);
  t.teardown(() => bind.close());
  const len = 256 * PAGE_SIZE;
  const { va, vma } = await ex.mmap(mm, len / PAGE_SIZE);
  const data = pattern(len, 9);
  ex.fill(vma, 0, data);
  const run = async (opcode: number, tag: string): Promise<Completion> => {
    q.submit({ opcode, src: va, dst: 0, len, args: [] }, tag);
    const c = await completion(machine, q, nic, tag);
    t.equal(c.status, CqStatus.Success, `${tag} succeeds`);
    return c;
  };

  t.test('a cold buffer: asked ahead, the SEND is answered by it', async (t) => {
    const c = await run(NIC_OP_PREFETCH, 'prefetch');
    t.equal(c.result, len / PAGE_SIZE, 'every page asked');
    t.equal((await run(NIC_OP_SEND, 'send')).result, fnv1aReference(data), 'bytes exact');
    const v = await vaCounters(machine, nic);
    t.equal(v.faults, 1, 'one page request');
    t.equal(v.prefetchHits, 1, 'answered ahead');
    t.equal((await run(NIC_OP_PREFETCH, 'again')).result, 0, 'nothing missing: nothing asked');
  });

  t.test('a moved buffer: only its pages are asked again; a move after the hint voids it', async (t) => {
    await ex.revoke(vma);
    const answered = bind.requests;
    t.equal((await run(NIC_OP_PREFETCH, 'after move')).result, len / PAGE_SIZE);
    for (let i = 0; bind.requests === answered; i++) {
      if (i > 1000) throw new Error('the kernel did not answer the hint within 5 s');
      await sleep(5);
    }
    // The kernel answered the hint; the exporter moves the buffer again before the SEND: that reply is stale.
    await ex.revoke(vma);
    const before = await vaCounters(machine, nic);
    t.equal((await run(NIC_OP_SEND, 'send moved')).result, fnv1aReference(data), 'bytes exact from the new pages');
    const after = await vaCounters(machine, nic);
    t.equal(after.prefetchHits, before.prefetchHits, 'the stale hint answered nothing');
    t.ok(after.faults > before.faults, 'the SEND asked again');
    t.equal(bind.violations().count, 0, 'no stale access');
  });
});
