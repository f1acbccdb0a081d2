// The nic device kind: SEND checksums process memory through DMA by VA, MONITOR
// samples a seqcount-protected progress record the CPU keeps updating.
import t from 'tap';
import { setTimeout as sleep } from 'node:timers/promises';
import { Machine, type Device } from '../../src/devices/machine.js';
import { deviceQuery } from '../../src/workloads/command_runner.js';
import { Kernel } from '../../src/kernel/kernel.js';
import { HostQueue } from '../../src/drivers/host_queue.js';
import { ImporterBinding } from '../../src/drivers/importer_binding.js';
import { PROT_READ, PROT_WRITE } from '../../src/kernel/mm.js';
import { MonitorSample, NIC_HOST_QID, NIC_MON_MAX_SAMPLES, NIC_MON_PERIOD_US, NIC_MON_STUCK_MS, NIC_OP_MONITOR, NIC_OP_SEND } from '../../src/devices/nic_abi.js';
import { ProgressRecord } from '../../src/shm/progress_record.js';
import { CqStatus, type Completion } from '../../src/shm/ring.js';
import { fnv1aReference } from '../../src/workloads/reference/checksum.js';
import { PAGE_SIZE } from '../../src/shm/constants.js';
import { KiB, MiB, pattern } from '../fixtures/kernel_machine.js';

/** Waits for the next completion of q. */
async function completion(machine: Machine, q: HostQueue, dev: Device): Promise<Completion> {
  for (;;) {
    const seen = machine.irqSeen();
    const got = q.reap();
    if (got.length > 0) return got[0].c;
    await machine.waitHostIrq(seen, () => [{ dev, outstanding: q.outstanding }]);
  }
}

function monArgs(periodUs: number, maxSamples: number): number[] {
  const a: number[] = [0, 0];
  a[NIC_MON_PERIOD_US] = periodUs;
  a[NIC_MON_MAX_SAMPLES] = maxSamples;
  return a;
}

t.test('nic', async (t) => {
  const machine = await Machine.create({ ramBytes: 16 * MiB, devices: [{ name: 'nic0', kind: 'nic', memBytes: 256 * KiB, barBytes: 0, props: {} }], timeoutMs: 5000 });
  t.teardown(() => machine.shutdown());
  const nic = machine.device('nic0');
  const q = await HostQueue.create(machine, nic, NIC_HOST_QID, 8);
  await machine.start();
  const kernel = Kernel.boot(machine, { check: true });
  const mm = kernel.createMm();
  const bind = await ImporterBinding.bind(kernel, 'nic0', mm);
  t.teardown(() => bind.close());

  t.test('SEND checksums every byte of a process buffer, in order, across chunks', async (t) => {
    // 200 KiB + 123 bytes: several 64 KiB chunks and a ragged end, from an unaligned start.
    const len = 200 * KiB + 123;
    const va = await mm.mmap({ length: len + PAGE_SIZE, prot: PROT_READ | PROT_WRITE });
    const data = pattern(len, 5);
    await mm.write(va + 7, data);
    q.submit({ opcode: NIC_OP_SEND, src: va + 7, dst: 0, len, args: [] }, 'send');
    const c = await completion(machine, q, nic);
    t.equal(c.status, CqStatus.Success);
    t.equal(c.result, fnv1aReference(data), 'result = fnv1a of the bytes, | 0');
    const k = await deviceQuery(machine, nic, { op: 'nic-counters' });
    t.equal(k.sent, len);
    t.equal(k.sendChecksum, fnv1aReference(data));
    t.equal(bind.violations().count, 0);
  });

  t.test('SEND of an unmapped address completes with DataTransferError naming the address', async (t) => {
    q.submit({ opcode: NIC_OP_SEND, src: 0x10_0000_0000, dst: 0, len: 100, args: [] }, 'bad');
    const c = await completion(machine, q, nic);
    t.equal(c.status, CqStatus.DataTransferError);
    const log = await nic.handle.call('errors');
    t.match(log.find((e) => e.seq === c.result)?.message, /nic0: SEND of \[0x1000000000, \+100\).*EFAULT/);
  });

  t.test('MONITOR samples a record the CPU updates: monotonic, ends at done', async (t) => {
    const rec = await mm.mmap({ length: PAGE_SIZE, prot: PROT_READ | PROT_WRITE });
    const log = await mm.mmap({ length: 16 * PAGE_SIZE, prot: PROT_READ | PROT_WRITE });
    const word = (v: number) => new Uint8Array(Int32Array.of(v).buffer);
    const publish = async (seq: number, it: number, done: number) => {
      await mm.write(rec + ProgressRecord.seq * 4, word(seq + 1)); // odd: writing
      await mm.write(rec + ProgressRecord.iteration * 4, word(it));
      await mm.write(rec + ProgressRecord.checksum * 4, word(it * 1000 + 7));
      await mm.write(rec + ProgressRecord.done * 4, word(done));
      await mm.write(rec + ProgressRecord.seq * 4, word(seq + 2)); // even: published
    };
    const max = 4000;
    q.submit({ opcode: NIC_OP_MONITOR, src: rec, dst: log, len: 0, args: monArgs(200, max) }, 'mon');
    const done = completion(machine, q, nic);
    const iterations = 30;
    for (let i = 1; i <= iterations; i++) {
      await publish(2 * (i - 1), i, i === iterations ? 1 : 0);
      await sleep(1);
    }
    const c = await done;
    t.equal(c.status, CqStatus.Success);
    const n = c.result;
    t.ok(n >= 1 && n < max, `${n} samples, ended by done`);
    const bytes = await mm.read(log, n * MonitorSample.kBytes);
    const s = new Int32Array(bytes.buffer);
    let prev = -1;
    const bad: string[] = [];
    for (let i = 0; i < n; i++) {
      const it = s[i * MonitorSample.kFieldCount + MonitorSample.iteration];
      const sum = s[i * MonitorSample.kFieldCount + MonitorSample.checksum];
      if (it < prev) bad.push(`sample ${i}: iteration ${it} after ${prev}`);
      if (it > 0 && sum !== it * 1000 + 7) bad.push(`sample ${i}: torn (iteration ${it}, checksum ${sum})`);
      prev = it;
    }
    t.same(bad, [], 'every sample monotonic and whole');
    t.equal(prev, iterations, 'the last sample is the final record');
    const k = await deviceQuery(machine, nic, { op: 'nic-counters' });
    t.equal(k.samples, n);
    t.equal(k.nonMonotonic, 0);
    t.equal(s[(n - 1) * MonitorSample.kFieldCount + MonitorSample.torn], k.torn, 'the last sample carries the torn count');
  });

  t.test('MONITOR of a writer stuck mid-update (seq odd for good) fails after NIC_MON_STUCK_MS, naming it', async (t) => {
    const rec = await mm.mmap({ length: PAGE_SIZE, prot: PROT_READ | PROT_WRITE });
    const log = await mm.mmap({ length: PAGE_SIZE, prot: PROT_READ | PROT_WRITE });
    await mm.write(rec + ProgressRecord.seq * 4, new Uint8Array(Int32Array.of(7).buffer));
    const t0 = performance.now();
    q.submit({ opcode: NIC_OP_MONITOR, src: rec, dst: log, len: 0, args: monArgs(100, 10) }, 'stuck');
    const c = await completion(machine, q, nic);
    t.equal(c.status, CqStatus.DataTransferError);
    t.ok(performance.now() - t0 >= NIC_MON_STUCK_MS, 'not before the stuck time');
    const log2 = await nic.handle.call('errors');
    t.match(log2.find((e) => e.seq === c.result)?.message, new RegExp(`every read for ${NIC_MON_STUCK_MS} ms was torn .*seq 7 -> 7.*stuck mid-update`));
  });
});
