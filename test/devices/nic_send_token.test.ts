// A NIC SEND holds one run token across its 64 KiB bursts (workers/nic.ts send,
// VaSpace.io keeping a command's hold): one ticket for a warm SEND of many bursts
// (it took one per burst), given back at the end of the command; the bytes exact.
import t, { type Test } from 'tap';
import { Machine } from '../../src/devices/machine.js';
import { HostQueue } from '../../src/drivers/host_queue.js';
import { ImporterBinding } from '../../src/drivers/importer_binding.js';
import { Kernel } from '../../src/kernel/kernel.js';
import { PROT_READ, PROT_WRITE } from '../../src/kernel/mm.js';
import { NIC_HOST_QID, NIC_OP_SEND } from '../../src/devices/nic_abi.js';
import { NIC_PKT_SLOT_BYTES } from '../../src/shm/nic_layout.js';
import { RunTokenHdr, RunTokenSlot, RunTokenState, runTokenSlotWord } from '../../src/shm/run_token_layout.js';
import { CqStatus } from '../../src/shm/ring.js';
import { fnv1aReference } from '../../src/workloads/reference/checksum.js';
import { KiB, MiB, pattern } from '../fixtures/kernel_machine.js';
import { completion } from '../fixtures/host_completion.js';

/** NICs sharing one run token, started and bound to one process; mapLen bytes mapped at va, its first MiB of pattern `seed`. */
async function nicsOnOneToken(t: Test, names: readonly string[], mapLen: number, seed: number) {
  const machine = await Machine.create({
    ramBytes: 16 * MiB,
    timeoutMs: 10000,
    runTokens: 1,
    devices: names.map((name) => ({ name, kind: 'nic' as const, memBytes: 256 * KiB, barBytes: 0, props: {} })),
  });
  t.teardown(() => machine.shutdown());
  const nics = names.map((n) => machine.device(n));
  const qs = await Promise.all(nics.map((d) => HostQueue.create(machine, d, NIC_HOST_QID, 4)));
  await machine.start();
  const kernel = Kernel.boot(machine, {});
  const mm = kernel.createMm();
  for (const n of names) {
    const bind = await ImporterBinding.bind(kernel, n, mm);
    t.teardown(() => bind.close());
  }
  const va = await mm.mmap({ length: mapLen, prot: PROT_READ | PROT_WRITE });
  const data = pattern(MiB, seed);
  await mm.write(va, data);
  const send = async (i: number, len: number, tag: string) => {
    qs[i].submit({ opcode: NIC_OP_SEND, src: va, dst: 0, len, args: [] }, tag);
    return completion(machine, qs[i], nics[i], tag);
  };
  return { machine, mm, nics, va, data, send, v: new Int32Array(machine.runTokens!.sab) };
}

t.test('a warm SEND of many bursts takes one run token ticket and gives it back at the end', async (t) => {
  const { nics, data, send, v } = await nicsOnOneToken(t, ['nic0', 'idle0'], MiB, 5);
  const sendOk = async (tag: string): Promise<number> => {
    const c = await send(0, MiB, tag);
    t.equal(c.status, CqStatus.Success, `${tag} succeeds`);
    return c.result;
  };
  t.equal(await sendOk('cold'), fnv1aReference(data), 'cold SEND: bytes exact');
  const before = Atomics.load(v, RunTokenHdr.next);
  t.equal(await sendOk('warm'), fnv1aReference(data), 'warm SEND: bytes exact');
  t.equal(Atomics.load(v, RunTokenHdr.next) - before, 1, `one ticket for ${MiB / NIC_PKT_SLOT_BYTES} bursts (no page request: the TLB is warm)`);
  t.equal(Atomics.load(v, runTokenSlotWord(nics[0].shm.index, RunTokenSlot.state)), RunTokenState.Idle, 'the token was given back when the command ended');
});

t.test('a SEND that fails at an unmapped page mid-command leaves no ticket held; the other NIC still sends', async (t) => {
  const { mm, nics, va, data, send, v } = await nicsOnOneToken(t, ['nic0', 'nic1'], 2 * MiB, 7);
  await mm.munmap(va + MiB, MiB);
  // The SEND fails in its page request, before which VaSpace.runs gave the token back; the command's
  // `finally` (workers/nic.ts) gives it back too. This guards the pair: it fails only if both go.
  const warm = await send(0, MiB, 'warm'); // the mapped half, warm in nic0's TLB for the next SEND's first bursts
  t.equal(warm.result, fnv1aReference(data) | 0, 'the mapped half: bytes exact');
  const bad = await send(0, 2 * MiB, 'past the unmapped half');
  t.equal(bad.status, CqStatus.DataTransferError, 'the SEND fails where the unmapped half starts');
  t.equal(Atomics.load(v, runTokenSlotWord(nics[0].shm.index, RunTokenSlot.state)), RunTokenState.Idle, 'nic0 gave its token back');
  t.equal(Atomics.load(v, RunTokenHdr.next), Atomics.load(v, RunTokenHdr.released), 'every ticket taken was given back');
  const other = await send(1, MiB, 'nic1');
  t.equal(other.status, CqStatus.Success, 'nic1, with the one token, still sends');
  t.equal(other.result, fnv1aReference(data) | 0, 'nic1: bytes exact');
});
