// NIC_OP_PREFETCH (an ODP region's advise_mr PREFETCH, workers/nic.ts) and
// DeviceTlb.collectAhead: the NIC asks for the translations it lacks and
// completes at once; the next SEND there is answered by that request; an
// invalidation of the range before the reply is used voids it (the SEND
// asks again, bytes still exact); an unanswered request is left in flight.
import t from 'tap';
import { setTimeout as sleep } from 'node:timers/promises';
import { Machine, type Device } from '../../src/devices/machine.js';
import { BarExporter } from '../../src/drivers/bar_exporter.js';
import { HostQueue } from '../../src/drivers/host_queue.js';
import { ImporterBinding } from '../../src/drivers/importer_binding.js';
import { allP2p } from '../../src/kernel/p2p_map.js';
import { Kernel } from '../../src/kernel/kernel.js';
import { NIC_HOST_QID, NIC_OP_PREFETCH, NIC_OP_SEND } from '../../src/devices/nic_abi.js';
import { PAGE_SIZE } from '../../src/shm/constants.js';
import { DeviceCtl, DeviceStats } from '../../src/shm/device_ctl.js';
import { loadU64 } from '../../src/shm/layout.js';
import type { DeviceShm } from '../../src/shm/phys_mem.js';
import { CqStatus, type Completion } from '../../src/shm/ring.js';
import { PageRequest } from '../../src/shm/tlb_layout.js';
import { stubReplyEntry } from '../fixtures/stub_reply.js';
import { DeviceTlb } from '../../workers/runtime/device_tlb.js';
import type { InvalidationPort } from '../../workers/runtime/invalidation.js';
import { fnv1aReference } from '../../src/workloads/reference/checksum.js';
import { vaCounters } from '../../src/workloads/accounting.js';
import { KiB, MiB, pattern } from '../fixtures/kernel_machine.js';

t.test('DeviceTlb.collectAhead against a stub kernel', async (t) => {
  const pri = new Int32Array(new SharedArrayBuffer(PageRequest.kBytes));
  const hooks: ((s: number, e: number) => void)[] = [];
  let served = 0;
  const serve = (gen: number) => {
    const s = Atomics.load(pri, PageRequest.reqSeq);
    const n = pri[PageRequest.reqPages];
    const start = loadU64(pri, PageRequest.reqStart);
    for (let i = 0; i < n; i++) stubReplyEntry(pri, i, start, i, gen, i);
    pri[PageRequest.replyErrno] = 0;
    pri[PageRequest.replyPages] = n;
    served++;
    Atomics.store(pri, PageRequest.replySeq, s);
  };
  const inv = { addHook: (h: (s: number, e: number) => void) => hooks.push(h), check: () => false, sleepBound: (ms: number) => ms } as unknown as InvalidationPort;
  const self = { name: 'stub', ctl: new Int32Array(new SharedArrayBuffer(DeviceCtl.kBytes)), stats: new Float64Array(DeviceStats.kFieldCount) } as unknown as DeviceShm;
  const tlb = new DeviceTlb(self, inv, pri);
  const va = 256 * PAGE_SIZE;

  t.equal(tlb.collectAhead(), true, 'nothing in flight: the mailbox is free');
  tlb.prefetch(va, 4, false);
  t.equal(tlb.collectAhead(), false, 'not answered yet: still in flight');
  t.equal(tlb.size, 0);
  serve(7);
  t.equal(tlb.collectAhead(), true, 'answered: collected');
  t.equal(tlb.size, 4, 'and installed');
  t.equal(tlb.gen(va / PAGE_SIZE + 3), 7);
  t.equal(tlb.collectAhead(), true, 'collected once');

  // An invalidation of the range between the reply and the collection voids it.
  const va2 = 1024 * PAGE_SIZE;
  tlb.prefetch(va2, 2, false);
  serve(8);
  hooks.forEach((h) => h(va2, va2 + PAGE_SIZE));
  t.equal(tlb.collectAhead(), true);
  t.equal(tlb.usable(va2 / PAGE_SIZE + 1, false), false, 'a raced reply is not installed, not even its pages the invalidation missed');
  t.equal(served, 2);
});

/** Waits for the completion tagged `tag` on q. */
async function completion(machine: Machine, q: HostQueue, dev: Device, tag: string): Promise<Completion> {
  for (;;) {
    const seen = machine.irqSeen();
    const got = q.reap().find((x) => x.tag === tag);
    if (got) return got.c;
    await machine.waitHostIrq(seen, () => [{ dev, outstanding: q.outstanding }]);
  }
}

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
