// A device starting another device's staged command (accel-nic-stream's send
// trigger, src/workloads/accel_nic_stream/send_trigger.ts): quiet commands
// (SQE_F_QUIET) post their completion without an MSI unless they fail; the
// accelerator's WRITE_VALUE rings a NIC queue's doorbell through the NIC's
// BAR0, which starts the SEND the kernel staged there (and nothing else
// does); a queue a peer rings takes no host submit; commands submitted
// without their doorbell start together, with one device wake.
import t from 'tap';
import { setTimeout as sleep } from 'node:timers/promises';
import { Machine, type Device } from '../../src/devices/machine.js';
import { Kernel } from '../../src/kernel/kernel.js';
import { HostQueue } from '../../src/drivers/host_queue.js';
import { ImporterBinding } from '../../src/drivers/importer_binding.js';
import { PROT_READ, PROT_WRITE } from '../../src/kernel/mm.js';
import { ACC_HOST_QID, ACC_OP_WRITE_VALUE } from '../../src/devices/accelerator_abi.js';
import { NIC_OP_SEND, NIC_PEER_QID } from '../../src/devices/nic_abi.js';
import { deviceQuery } from '../../src/workloads/command_runner.js';
import { DeviceCtl, DeviceRegs } from '../../src/shm/device_ctl.js';
import { bar0Base } from '../../src/shm/phys_mem.js';
import { CqStatus, SQE_F_QUIET, type Completion } from '../../src/shm/ring.js';
import { PAGE_SIZE } from '../../src/shm/constants.js';
import { fnv1aReference } from '../../src/workloads/reference/checksum.js';
import { KiB, MiB, pattern } from '../fixtures/kernel_machine.js';

/** The next completion of q, polled (no MSI needed): null after `ms`. */
async function polled(q: HostQueue, ms = 3000): Promise<Completion | null> {
  const t0 = performance.now();
  while (performance.now() - t0 < ms) {
    const got = q.reap();
    if (got.length > 0) return got[0].c;
    await sleep(1);
  }
  return null;
}

const irqs = (d: Device) => Atomics.load(d.shm.ctl, DeviceCtl.irq);

t.test('peer doorbell', async (t) => {
  const machine = await Machine.create({
    ramBytes: 16 * MiB,
    devices: [
      { name: 'acc0', kind: 'accelerator', memBytes: 1 * MiB, barBytes: 0, props: {} },
      { name: 'nic0', kind: 'nic', memBytes: 256 * KiB, barBytes: 0, props: {} },
    ],
    timeoutMs: 5000,
  });
  t.teardown(() => machine.shutdown());
  const acc = machine.device('acc0');
  const nic = machine.device('nic0');
  const accQ = await HostQueue.create(machine, acc, ACC_HOST_QID, 8);
  const peerQ = await HostQueue.create(machine, nic, NIC_PEER_QID, 8);
  await machine.start();
  const kernel = Kernel.boot(machine, { check: true });
  const mm = kernel.createMm();
  const bind = await ImporterBinding.bind(kernel, 'nic0', mm);
  t.teardown(() => bind.close());
  const scratch = acc.mem!.allocContig(1).start * PAGE_SIZE;

  t.test('a quiet command that succeeds posts its completion without an MSI; one that fails raises it', async (t) => {
    const ram = machine.ram.allocContig(1).start * PAGE_SIZE;
    const before = irqs(acc);
    t.ok(accQ.submit({ opcode: ACC_OP_WRITE_VALUE | SQE_F_QUIET, src: scratch, dst: ram + 8, len: 4, args: [0x1234567] }, 'quiet'));
    const c = await polled(accQ);
    t.equal(c?.status, CqStatus.Success, 'the flag is not part of the opcode');
    t.equal(new DataView(machine.shm.ram.buffer).getInt32(ram + 8, true), 0x1234567, 'the value was written');
    t.equal(irqs(acc), before, 'no MSI for it');
    t.ok(accQ.submit({ opcode: 0x77 | SQE_F_QUIET, src: 0, dst: 0, len: 0, args: [] }, 'bad'));
    const bad = await polled(accQ);
    t.equal(bad?.status, CqStatus.InvalidOpcode);
    t.equal(irqs(acc), before + 1, 'a failed quiet command raises its MSI');
  });

  t.test('commands submitted without their doorbell start together at ring(): one device wake for the batch', async (t) => {
    const ram = machine.ram.allocContig(1).start * PAGE_SIZE;
    const tail = Atomics.load(acc.shm.regs, DeviceRegs.sqTail + ACC_HOST_QID);
    const wake = Atomics.load(acc.shm.ctl, DeviceCtl.wake);
    for (const v of [1, 2]) t.ok(accQ.submit({ opcode: ACC_OP_WRITE_VALUE, src: scratch, dst: ram + 4 * v, len: 4, args: [v] }, v, false));
    await sleep(20);
    t.equal(Atomics.load(acc.shm.regs, DeviceRegs.sqTail + ACC_HOST_QID), tail, 'no doorbell yet');
    t.equal(accQ.reap().length, 0, 'nothing ran');
    accQ.ring();
    t.equal(Atomics.load(acc.shm.ctl, DeviceCtl.wake), wake + 1, 'one wake for both');
    const got: number[] = [];
    for (const t0 = performance.now(); got.length < 2 && performance.now() - t0 < 3000; await sleep(1)) got.push(...accQ.reap().map((x) => x.c.status));
    t.same(got, [CqStatus.Success, CqStatus.Success]);
    const ramView = new DataView(machine.shm.ram.buffer);
    t.same([ramView.getInt32(ram + 4, true), ramView.getInt32(ram + 8, true)], [1, 2], 'both ran, in order');
  });

  t.test("the accelerator's WRITE_VALUE to the NIC's BAR0 starts the SEND the kernel staged, and nothing else does", async (t) => {
    const len = 100 * KiB;
    const va = await mm.mmap({ length: len, prot: PROT_READ | PROT_WRITE });
    const data = pattern(len, 9);
    await mm.write(va, data);
    const tail = peerQ.stage({ opcode: NIC_OP_SEND, src: va, dst: 0, len, args: [] }, 'send');
    t.equal(tail, 1, 'staged at slot 0: the doorbell value is 1');
    await sleep(30);
    t.equal((await deviceQuery(machine, nic, { op: 'nic-counters' })).sends, 0, 'staged, not started');
    t.throws(() => peerQ.submit({ opcode: NIC_OP_SEND, src: va, dst: 0, len, args: [] }, 'host'), /a peer rings/, 'no host submit on a queue a peer rings');
    const doorbell = kernel.dmaMap('acc0', bar0Base(nic.shm.index) + (DeviceRegs.sqTail + NIC_PEER_QID) * 4, 4, true);
    t.ok(accQ.submit({ opcode: ACC_OP_WRITE_VALUE, src: scratch, dst: doorbell, len: 4, args: [tail!] }, 'ring'));
    t.equal((await polled(accQ))?.status, CqStatus.Success);
    const c = await polled(peerQ);
    t.equal(c?.status, CqStatus.Success, 'the SEND ran');
    t.equal(c?.result, fnv1aReference(data), 'over the staged buffer');
    t.equal(bind.violations().count, 0);
  });
});
