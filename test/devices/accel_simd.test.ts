// The accelerator's WebAssembly SIMD kernels (src/devices/models/accel_simd.ts)
// against the workloads' independent CPU reference (src/workloads/reference/),
// in place in a shared WebAssembly.Memory as the device runs them: word counts
// off the four-lane grid, buffers at unaligned-to-16 offsets, the stream
// checksum's lanes continued across calls (ragged chunks too), buffers above
// 2 GiB and ending at 4 GiB, offsets the kernels refuse. Which device memories
// are a WebAssembly.Memory (src/shm/phys_mem.ts), and that the accelerator and
// NIC workers then really run the WebAssembly kernels (their counters), JS
// otherwise. Behaviour only; speed is measured by `peervma bench`.
import t from 'tap';
import type { Test as TapTest } from 'tap';
import { AccelSimd } from '../../src/devices/models/accel_simd.js';
import { StreamChecksum, checksum } from '../../src/devices/models/checksum.js';
import { Wasm } from '../../src/common/wasm.js';
import { createMachineShm, WASM_PAGE_BYTES } from '../../src/shm/phys_mem.js';
import { accelInitReference, accelReference, accelTransformReference } from '../../src/workloads/reference/accel.js';
import { fnv1aReference } from '../../src/workloads/reference/checksum.js';
import { Machine } from '../../src/devices/machine.js';
import { HostQueue } from '../../src/drivers/host_queue.js';
import { ACC_F_INIT, ACC_HOST_QID, ACC_OP_COMPUTE } from '../../src/devices/accelerator_abi.js';
import { CommandRunner } from '../../src/workloads/command_runner.js';
import { PAGE_SIZE } from '../../src/shm/constants.js';
import { KiB, MiB, pattern } from '../fixtures/kernel_machine.js';
import { deviceQuery } from '../../src/workloads/command_runner.js';
import { Kernel } from '../../src/kernel/kernel.js';
import { ImporterBinding } from '../../src/drivers/importer_binding.js';
import { PROT_READ, PROT_WRITE } from '../../src/kernel/mm.js';
import { NIC_HOST_QID, NIC_OP_SEND } from '../../src/devices/nic_abi.js';
import { CqStatus } from '../../src/shm/ring.js';

const memory = new Wasm.Memory({ initial: 2, maximum: 2, shared: true });
const simd = new AccelSimd(memory);
const words = new Int32Array(memory.buffer);

const SIZES = [1, 2, 3, 4, 5, 7, 8, 9, 31, 1021, 4096];
const OFFSETS = [0, 4, 8, 12, 4096 + 20];

t.test('init, init+step and steps 2..3 equal the reference: checksums and buffer', async (t) => {
  for (const n of SIZES) {
    for (const off of OFFSETS) {
      const seed = Math.imul(n, 7919) ^ off;
      const ref = accelReference(n, seed, 3);
      const x = words.subarray(off / 4, off / 4 + n);
      words.fill(0x5a5a5a5a, 0, (2 * WASM_PAGE_BYTES) / 4);
      t.equal(simd.init(off, n, seed), ref.checksums[0], `${n} words at ${off}: init's checksum`);
      const seeded = new Int32Array(n);
      accelInitReference(seeded, seed);
      t.same(x, seeded, `${n} words at ${off}: init's buffer`);
      const sums = [simd.initStep(off, n, seed), simd.step(off, n, 2, seed), simd.step(off, n, 3, seed)];
      t.same(sums, Array.from(ref.checksums.subarray(1)), `${n} words at ${off}: init+step, then steps 2 and 3`);
      t.same(x, ref.buffer, `${n} words at ${off}: buffer after step 3`);
      t.equal(words[off / 4 + n], 0x5a5a5a5a, `${n} words at ${off}: the word after the buffer untouched`);
      if (off > 0) t.equal(words[off / 4 - 1], 0x5a5a5a5a, `${n} words at ${off}: the word before it untouched`);
    }
  }
});

t.test('checksum and transform equal the reference; a transform chunk starts at any word index', async (t) => {
  for (const n of SIZES) {
    for (const off of OFFSETS) {
      const x = words.subarray(off / 4, off / 4 + n);
      for (let i = 0; i < n; i++) x[i] = Math.imul(i + off, 0x9e3779b1) ^ n;
      const bytes = new Uint8Array(x.slice().buffer);
      t.equal(simd.checksum(off, n), fnv1aReference(bytes) >>> 0, `${n} words at ${off}: checksum`);
      const want = x.slice();
      accelTransformReference(want, 1000 + n, -5);
      simd.transform(off, n, 1000 + n, -5);
      t.same(x, want, `${n} words at ${off}: transform from word ${1000 + n}`);
    }
  }
});

/** Every kernel on n words at byte `off` of `w`'s memory against the reference; the words around the buffer untouched. */
function kernelsMatch(t: TapTest, k: AccelSimd, w: Int32Array, off: number, n: number, what: string): void {
  const at = off / 4;
  const x = w.subarray(at, at + n);
  const seed = Math.imul(n, 7919) ^ 5;
  if (at > 0) w[at - 1] = 0x5a5a5a5a;
  if (at + n < w.length) w[at + n] = 0x5a5a5a5a;
  const ref = accelReference(n, seed, 3);
  t.equal(k.init(off, n, seed), ref.checksums[0], `${what}: init's checksum`);
  const seeded = new Int32Array(n);
  accelInitReference(seeded, seed);
  t.same(x, seeded, `${what}: init's buffer`);
  t.same([k.initStep(off, n, seed), k.step(off, n, 2, seed), k.step(off, n, 3, seed)], Array.from(ref.checksums.subarray(1)), `${what}: init+step, steps 2 and 3`);
  t.same(x, ref.buffer, `${what}: buffer after step 3`);
  t.equal(k.checksum(off, n), checksum(new Uint8Array(x.slice().buffer)), `${what}: checksum`);
  const want = x.slice();
  accelTransformReference(want, 77, -5);
  k.transform(off, n, 77, -5);
  t.same(x, want, `${what}: transform`);
  if (at > 0) t.equal(w[at - 1], 0x5a5a5a5a, `${what}: the word before untouched`);
  if (at + n < w.length) t.equal(w[at + n], 0x5a5a5a5a, `${what}: the word after untouched`);
}

t.test('above 2 GiB and up to the end of a 4 GiB memory: offsets >= 2^31, a buffer ending at 2^32 (a shared Memory only reserves its pages)', async (t) => {
  for (const pages of [32769, 65536]) {
    const big = new Wasm.Memory({ initial: pages, maximum: pages, shared: true });
    const k = new AccelSimd(big);
    const w = new Int32Array(big.buffer);
    const bytes = pages * WASM_PAGE_BYTES;
    // 4099 words: whole groups and a tail of 3; 4100: whole groups only. Each ends at the memory's end, then 20 bytes before.
    for (const n of [4099, 4100]) {
      for (const gap of [0, 20]) kernelsMatch(t, k, w, bytes - gap - n * 4, n, `${pages} pages, ${n} words ending ${gap} bytes before the end`);
    }
  }
});

t.test('an offset off the word grid or words past the memory: a clear error, nothing computed', async (t) => {
  words.fill(7, 0, 16);
  for (const [off, n] of [[2, 4], [4097, 8], [-4, 4], [2 * WASM_PAGE_BYTES - 12, 4]]) {
    t.throws(() => simd.init(off, n, 1), { name: 'RangeError', message: new RegExp(`AccelSimd: ${n} words at byte ${off}: the offset must be 4-aligned`) }, `init of ${n} words at ${off}`);
    t.throws(() => simd.checksum(off, n), RangeError, `checksum of ${n} words at ${off}`);
    t.throws(() => simd.lanes(off, n, new Int32Array(4)), RangeError, `lanes of ${n} words at ${off}`);
  }
  t.same(Array.from(words.subarray(0, 16)), new Array(16).fill(7), 'nothing written');
});

t.test('the stream lanes continued in place over ragged chunks (4092, 4100, 4001 bytes) equal the JS stream checksum', async (t) => {
  const n = 3100;
  for (let i = 0; i < n; i++) words[i] = Math.imul(i, 0x2c1b3c6d) + 11;
  const all = new Uint8Array(words.buffer, 0, 4092 + 4100 + 4001);
  const fast = new StreamChecksum(simd);
  // 1023 words (the next chunk starts on lane 3), 1025 (ends on lane 0), 4001 bytes (a ragged last word).
  let o = 0;
  for (const len of [4092, 4100, 4001]) {
    fast.update(new Uint8Array(words.buffer, o, len));
    o += len;
  }
  t.ok(fast.kernelWords > 0, 'the kernel hashed the whole groups');
  t.equal(fast.digest(), checksum(all.slice()), 'equals the JS stream checksum');
  t.equal(fast.digest() | 0, fnv1aReference(all.slice()), 'equals the reference');
});

t.test('the stream lanes continued in place equal the JS stream checksum', async (t) => {
  const n = 3000;
  for (let i = 0; i < n; i++) words[i] = Math.imul(i, 0x2c1b3c6d) + 7;
  const js = new StreamChecksum();
  js.update(new Uint8Array(words.buffer, 0, n * 4));
  const fast = new StreamChecksum(simd);
  // Chunks of 1024, 1024, 952 words: each continues the last one's lanes.
  for (let o = 0; o < n; o += 1024) fast.update(new Uint8Array(words.buffer, o * 4, Math.min(1024, n - o) * 4));
  t.equal(fast.digest(), js.digest());
  t.equal(fast.digest() | 0, fnv1aReference(new Uint8Array(words.slice(0, n).buffer)));
});

t.test('device memory: a WebAssembly.Memory for a kind that asks and a size of whole WebAssembly pages, else plain', async (t) => {
  const desc = createMachineShm(1 << 20, [
    { name: 'a', memBytes: 2 * WASM_PAGE_BYTES, barBytes: 0, wasm: true },
    { name: 'b', memBytes: WASM_PAGE_BYTES + 4096, barBytes: 0, wasm: true },
    { name: 'c', memBytes: 2 * WASM_PAGE_BYTES, barBytes: 0 },
  ]);
  const [a, b, c] = desc.devices;
  t.ok(a.memWasm, 'a: WebAssembly.Memory');
  t.equal(a.mem, a.memWasm!.buffer, 'a: its buffer is the device memory');
  t.equal(a.mem!.byteLength, 2 * WASM_PAGE_BYTES, 'a: exactly memBytes');
  t.equal(b.memWasm, null, 'b: not whole pages, plain');
  t.equal(b.mem!.byteLength, WASM_PAGE_BYTES + 4096);
  t.equal(c.memWasm, null, 'c: its kind did not ask');
});

t.test('the device: COMPUTE and its checksum equal the reference on a WebAssembly memory (SIMD) and on a plain one (JS)', async (t) => {
  for (const memBytes of [WASM_PAGE_BYTES * 2, WASM_PAGE_BYTES + 4 * PAGE_SIZE]) {
    const machine = await Machine.create({ ramBytes: 4 * MiB, devices: [{ name: 'acc0', kind: 'accelerator', memBytes, barBytes: 0, props: { 'x-corrupt-word': 0 } }], timeoutMs: 5000 });
    t.teardown(() => machine.shutdown());
    const acc = machine.device('acc0');
    t.equal(acc.shm.memWasm !== null, memBytes % WASM_PAGE_BYTES === 0, `${memBytes} bytes: WebAssembly memory iff whole pages`);
    const q = await HostQueue.create(machine, acc, ACC_HOST_QID, 8);
    await machine.start();
    const runner = new CommandRunner(machine);
    // 3 pages and 3 words: off the four-lane grid, at an offset that is not 16-aligned after the first page.
    const buf = acc.mem!.allocContig(4);
    const len = 3 * PAGE_SIZE + 12;
    const src = buf.start * PAGE_SIZE + 4;
    const c = await runner.run(q, { opcode: ACC_OP_COMPUTE, src, dst: 0, len, args: [3, 9, 0, ACC_F_INIT] });
    const ref = accelReference(len / 4, 9, 3);
    t.equal(c.result, ref.checksums[3] | 0, `${memBytes} bytes: checksum after 3 iterations`);
    t.same(new Int32Array(acc.shm.mem!.buffer, src, len / 4), ref.buffer, `${memBytes} bytes: buffer`);
    const k = await deviceQuery(machine, acc, { op: 'acc-counters' });
    t.equal(k.simdPasses, acc.shm.memWasm ? 3 : 0, `${memBytes} bytes: the WebAssembly kernels ran init+step and steps 2, 3 iff the memory is a WebAssembly.Memory`);
  }
});

t.test('the device above 2 GiB of local memory and up to 4 GiB: COMPUTE at the end of its memory equals the reference', async (t) => {
  for (const pages of [32769, 65536]) {
    const memBytes = pages * WASM_PAGE_BYTES;
    const machine = await Machine.create({ ramBytes: 4 * MiB, devices: [{ name: 'acc0', kind: 'accelerator', memBytes, barBytes: 0, props: {} }], timeoutMs: 5000 });
    t.teardown(() => machine.shutdown());
    const acc = machine.device('acc0');
    const q = await HostQueue.create(machine, acc, ACC_HOST_QID, 8);
    await machine.start();
    // Whole groups of four words to the last byte, then 3 words after them.
    for (const len of [2 * PAGE_SIZE, 2 * PAGE_SIZE + 12]) {
      const src = memBytes - len;
      const c = await new CommandRunner(machine).run(q, { opcode: ACC_OP_COMPUTE, src, dst: 0, len, args: [2, 5, 0, ACC_F_INIT] });
      const ref = accelReference(len / 4, 5, 2);
      t.equal(c.result, ref.checksums[2] | 0, `${pages} pages, ${len} bytes: checksum after 2 iterations`);
      t.same(new Int32Array(acc.shm.mem!.buffer, src, len / 4), ref.buffer, `${pages} pages, ${len} bytes: buffer`);
    }
    await machine.shutdown();
  }
});

t.test('the NIC: SEND checksums a process buffer with the WebAssembly kernel in place on a WebAssembly memory, in JS on a plain one', async (t) => {
  for (const memBytes of [256 * KiB, 256 * KiB + PAGE_SIZE]) {
    const machine = await Machine.create({ ramBytes: 8 * MiB, devices: [{ name: 'nic0', kind: 'nic', memBytes, barBytes: 0, props: {} }], timeoutMs: 5000 });
    t.teardown(() => machine.shutdown());
    const nic = machine.device('nic0');
    t.equal(nic.shm.memWasm !== null, memBytes % WASM_PAGE_BYTES === 0, `${memBytes} bytes: WebAssembly memory iff whole pages`);
    const q = await HostQueue.create(machine, nic, NIC_HOST_QID, 8);
    await machine.start();
    const kernel = Kernel.boot(machine, { check: true });
    const mm = kernel.createMm();
    const bind = await ImporterBinding.bind(kernel, 'nic0', mm);
    // 150 KiB + 37 bytes from a start 4 bytes into a page: several packet slots and a ragged end.
    const len = 150 * KiB + 37;
    const va = await mm.mmap({ length: len + PAGE_SIZE, prot: PROT_READ | PROT_WRITE });
    const data = pattern(len, 3);
    await mm.write(va + 4, data);
    const c = await new CommandRunner(machine).run(q, { opcode: NIC_OP_SEND, src: va + 4, dst: 0, len, args: [] });
    t.equal(c.status, CqStatus.Success);
    t.equal(c.result, fnv1aReference(data), `${memBytes} bytes: SEND's checksum`);
    const k = await deviceQuery(machine, nic, { op: 'nic-counters' });
    // The kernel takes each chunk's whole groups of four words: all but the ragged last word.
    t.equal(k.simdBytes, nic.shm.memWasm ? (len >>> 4) * 16 : 0, `${memBytes} bytes: the bytes the WebAssembly kernel checksummed`);
    t.equal(bind.violations().count, 0);
    bind.close();
    await machine.shutdown();
  }
});
