// The accelerator's WebAssembly SIMD kernels (src/devices/models/accel_simd.ts)
// against the workloads' independent CPU reference (src/workloads/reference/),
// in place in a shared WebAssembly.Memory as the device runs them: word counts
// off the four-lane grid, buffers at unaligned-to-16 offsets, the stream
// checksum's lanes continued across calls. And which device memories are a
// WebAssembly.Memory (src/shm/phys_mem.ts). Behaviour only; speed is measured
// by `peervma bench`.
import t from 'tap';
import { AccelSimd } from '../../src/devices/models/accel_simd.js';
import { StreamChecksum } from '../../src/devices/models/checksum.js';
import { Wasm } from '../../src/common/wasm.js';
import { createMachineShm, WASM_PAGE_BYTES } from '../../src/shm/phys_mem.js';
import { accelInitReference, accelReference, accelTransformReference } from '../../src/workloads/reference/accel.js';
import { fnv1aReference } from '../../src/workloads/reference/checksum.js';
import { Machine } from '../../src/devices/machine.js';
import { HostQueue } from '../../src/drivers/host_queue.js';
import { ACC_F_INIT, ACC_HOST_QID, ACC_OP_COMPUTE } from '../../src/devices/accelerator_abi.js';
import { CommandRunner } from '../../src/workloads/command_runner.js';
import { PAGE_SIZE } from '../../src/shm/constants.js';
import { MiB } from '../fixtures/kernel_machine.js';

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
  }
});
