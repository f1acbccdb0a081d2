// Bus-address decode: RAM, register BARs, BAR2 through the slot table, faults.
import t from 'tap';
import { BusDecoder, busWordView, isBusFault, scratchRun, type BusRun } from '../../src/shm/bus_map.js';
import { BAR_SPACE_BASE, PAGE_SIZE } from '../../src/shm/constants.js';
import { DeviceRegs } from '../../src/shm/device_ctl.js';
import { attachMachineShm, bar0Base, bar0Reg, bar2Base, createMachineShm } from '../../src/shm/phys_mem.js';

const shm = attachMachineShm(
  createMachineShm(16 * PAGE_SIZE, [
    { name: 'gpu0', memBytes: 8 * PAGE_SIZE, barBytes: 4 * PAGE_SIZE },
    { name: 'nic0', memBytes: 0, barBytes: 0 },
  ]),
);
const bus = new BusDecoder(shm);

function run(addr: number, len: number): BusRun {
  const r = bus.decode(addr, len);
  if (isBusFault(r)) throw new Error(r.fault);
  return r;
}

t.test('system RAM decodes to itself, capped at the end of RAM', async (t) => {
  const r = run(3 * PAGE_SIZE + 5, 100);
  t.match(r, { target: 'ram', owner: -1, offset: 3 * PAGE_SIZE + 5, len: 100 });
  t.equal(run(15 * PAGE_SIZE, 3 * PAGE_SIZE).len, PAGE_SIZE, 'a run stops at the region end');
});

t.test('BAR0 decodes to the register file of its owner', async (t) => {
  t.match(run(bar0Base(1) + 4, 4), { target: 'regs', owner: 1, offset: 4, len: 4 });
  // A peer that DMA-writes bar0Reg(i, r) stores word r of device i's register file (dma_engine doorbell()).
  const word = (r: BusRun): number => r.offset / Int32Array.BYTES_PER_ELEMENT;
  t.match(run(bar0Reg(1, DeviceRegs.sqTail + 3), 4), { target: 'regs', owner: 1, len: 4 });
  t.equal(word(run(bar0Reg(1, DeviceRegs.sqTail + 3), 4)), DeviceRegs.sqTail + 3, "bar0Reg names queue 3's SQ tail doorbell");
  t.equal(word(run(bar0Reg(0, DeviceRegs.msi), 4)), DeviceRegs.msi, "and device 0's MSI mailbox");
});

t.test('BAR2 goes through the slot table and merges adjacent pages', async (t) => {
  const slots = shm.devices[0].barSlots!;
  slots.set([5, 6, 2, -1]);
  const r = run(bar2Base(0) + 100, 4 * PAGE_SIZE);
  t.match(r, { target: 'devmem', owner: 0, offset: 5 * PAGE_SIZE + 100, len: 2 * PAGE_SIZE - 100 }, 'slots 0,1 -> pages 5,6 merge; slot 2 -> page 2 does not');
  t.match(run(bar2Base(0) + 2 * PAGE_SIZE, PAGE_SIZE), { offset: 2 * PAGE_SIZE, len: PAGE_SIZE });
  const f = bus.decode(bar2Base(0) + 3 * PAGE_SIZE + 8, 4);
  t.ok(isBusFault(f));
  t.match(f, { fault: /BAR2 slot 3 of gpu0, which maps no device page/ });
});

t.test('decodeBarNext goes on in the window as decodeTo would, and leaves a bad slot to it', async (t) => {
  const slots = shm.devices[0].barSlots!;
  const saved = slots.slice();
  t.teardown(() => slots.set(saved));
  slots.set([5, 2, 3, -1]);
  const out = scratchRun();
  t.equal(bus.decodeTo(bar2Base(0), 4 * PAGE_SIZE, out), out);
  t.match(out, { target: 'devmem', owner: 0, offset: 5 * PAGE_SIZE, len: PAGE_SIZE });
  t.equal(bus.decodeBarNext(out, bar2Base(0) + PAGE_SIZE, 3 * PAGE_SIZE), true);
  t.match(out, { target: 'devmem', owner: 0, offset: 2 * PAGE_SIZE, len: 2 * PAGE_SIZE }, 'slots 1,2 -> pages 2,3 merge, slot 3 maps nothing');
  t.same(out, run(bar2Base(0) + PAGE_SIZE, 3 * PAGE_SIZE), 'what decode() gives');
  t.equal(bus.decodeBarNext(out, bar2Base(0) + 2 * PAGE_SIZE + 100, 50), true);
  t.match(out, { offset: 3 * PAGE_SIZE + 100, len: 50 }, 'inside a page, capped at len');
  t.equal(bus.decodeBarNext(out, bar2Base(0) + 3 * PAGE_SIZE, PAGE_SIZE), false, 'an unmapped slot: decodeTo reports it');
  t.equal(bus.decodeBarNext(out, bar2Base(0) + 4 * PAGE_SIZE, PAGE_SIZE), false, 'past the window');
  t.match(out, { offset: 3 * PAGE_SIZE + 100, len: 50 }, 'out untouched on false');
});

t.test('an address in no region is a fault naming it', async (t) => {
  t.match(bus.decode(16 * PAGE_SIZE, 4), { fault: 'bus address 0x10000 decodes to no region' });
  t.match(bus.decode(BAR_SPACE_BASE - 8, 4), { fault: /decodes to no region/ });
  t.ok(isBusFault(bus.decode(bar0Base(1) + 0x100000, 4)), 'past a register file');
});

t.test('ring views must be contiguous', async (t) => {
  t.equal(busWordView(bus, PAGE_SIZE, 256, 'q').length, 64);
  t.throws(() => busWordView(bus, bar2Base(0) + PAGE_SIZE, 2 * PAGE_SIZE, 'q'), /not contiguous/);
});

t.test('machine shm rejects sizes that are not whole pages', async (t) => {
  t.throws(() => createMachineShm(1000, []), /not a multiple of the 4096-byte page/);
});
