// A NIC SEND holds one run token across its 64 KiB bursts (workers/nic.ts send,
// VaSpace.io keeping a command's hold): one ticket for a warm SEND of many bursts
// (it took one per burst), given back at the end of the command; the bytes exact.
import t from 'tap';
import { Machine, type Device } from '../../src/devices/machine.js';
import { HostQueue } from '../../src/drivers/host_queue.js';
import { ImporterBinding } from '../../src/drivers/importer_binding.js';
import { Kernel } from '../../src/kernel/kernel.js';
import { PROT_READ, PROT_WRITE } from '../../src/kernel/mm.js';
import { NIC_HOST_QID, NIC_OP_SEND } from '../../src/devices/nic_abi.js';
import { NIC_PKT_SLOT_BYTES } from '../../src/shm/nic_layout.js';
import { RunTokenHdr, RunTokenSlot, RunTokenState, runTokenSlotWord } from '../../src/shm/run_token_layout.js';
import { CqStatus, type Completion } from '../../src/shm/ring.js';
import { fnv1aReference } from '../../src/workloads/reference/checksum.js';
import { KiB, MiB, pattern } from '../fixtures/kernel_machine.js';

async function completion(machine: Machine, q: HostQueue, dev: Device, tag: string): Promise<Completion> {
  for (;;) {
    const seen = machine.irqSeen();
    const got = q.reap().find((x) => x.tag === tag);
    if (got) return got.c;
    await machine.waitHostIrq(seen, () => [{ dev, outstanding: q.outstanding }]);
  }
}

t.test('a warm SEND of many bursts takes one run token ticket and gives it back at the end', async (t) => {
  const machine = await Machine.create({
    ramBytes: 16 * MiB,
    timeoutMs: 10000,
    runTokens: 1,
    devices: [
      { name: 'nic0', kind: 'nic', memBytes: 256 * KiB, barBytes: 0, props: {} },
      { name: 'idle0', kind: 'nic', memBytes: 256 * KiB, barBytes: 0, props: {} },
    ],
  });
  t.teardown(() => machine.shutdown());
  const nic = machine.device('nic0');
  const q = await HostQueue.create(machine, nic, NIC_HOST_QID, 4);
  await machine.start();
  const kernel = Kernel.boot(machine, {});
  const mm = kernel.createMm();
  const bind = await ImporterBinding.bind(kernel, 'nic0', mm);
  t.teardown(() => bind.close());
  const len = MiB;
  const va = await mm.mmap({ length: len, prot: PROT_READ | PROT_WRITE });
  const data = pattern(len, 5);
  await mm.write(va, data);
  const v = new Int32Array(machine.runTokens!.sab);
  const send = async (tag: string): Promise<number> => {
    q.submit({ opcode: NIC_OP_SEND, src: va, dst: 0, len, args: [] }, tag);
    const c = await completion(machine, q, nic, tag);
    t.equal(c.status, CqStatus.Success, `${tag} succeeds`);
    return c.result;
  };
  t.equal(await send('cold'), fnv1aReference(data), 'cold SEND: bytes exact');
  const before = Atomics.load(v, RunTokenHdr.next);
  t.equal(await send('warm'), fnv1aReference(data), 'warm SEND: bytes exact');
  t.equal(Atomics.load(v, RunTokenHdr.next) - before, 1, `one ticket for ${len / NIC_PKT_SLOT_BYTES} bursts (no page request: the TLB is warm)`);
  t.equal(Atomics.load(v, runTokenSlotWord(nic.shm.index, RunTokenSlot.state)), RunTokenState.Idle, 'the token was given back when the command ended');
});
