// The DMA engine's gather decodes a step's runs before it copies them
// (workers/runtime/dma_engine.ts transferStep): an invalidation found
// pending after DMA_POLL_BYTES cuts the copies there, and the safety check
// (onGather) is handed the runs and bytes that moved, not the ones decoded
// past the cut; a bad address decoded past the cut still fails the
// transfer, with the bytes before the cut moved.
import t from 'tap';
import { BusDecoder } from '../../src/shm/bus_map.js';
import { DMA_POLL_BYTES, PAGE_SIZE } from '../../src/shm/constants.js';
import { attachMachineShm, bar2Base, createMachineShm } from '../../src/shm/phys_mem.js';
import { DmaEngine } from '../../workers/runtime/dma_engine.js';

const PAGES = 16;
const POLL_PAGES = DMA_POLL_BYTES / PAGE_SIZE;

/**
 * acc0's BAR2 maps `slots` (device page per slot, -1: none); nic0 copies.
 * pending() is true at the copy polls listed in `pendingAt` (counted over
 * the transfer, among the polls made once a step has copied something) and
 * at the decode polls listed in `decodePendingAt` (the polls a step makes
 * before it has copied anything: DmaEngine.gather's): memory unchanged
 * since the last checkpoint tells the two apart.
 */
function rig(slots: number[], pendingAt: number[], decodePendingAt: number[] = []) {
  const shm = attachMachineShm(
    createMachineShm(16 * PAGE_SIZE, [
      { name: 'acc0', memBytes: 2 * PAGES * PAGE_SIZE, barBytes: PAGES * PAGE_SIZE },
      { name: 'nic0', memBytes: PAGES * PAGE_SIZE, barBytes: 0 },
    ]),
  );
  const [acc, nic] = shm.devices;
  acc.barSlots!.set(slots);
  for (let i = 0; i < acc.mem!.length; i += 4) acc.mem![i] = (i / PAGE_SIZE + 1) & 0xff; // each page its own byte
  let polls = 0;
  let decodePolls = 0;
  // Both memories as the last checkpoint (or the start) left them: a poll with both unchanged is a decode poll.
  let since: { nic: Uint8Array; acc: Uint8Array } = { nic: nic.mem!.slice(), acc: acc.mem!.slice() };
  const copying = () => !Buffer.from(nic.mem!).equals(since.nic) || !Buffer.from(acc.mem!).equals(since.acc);
  const checkpoints: number[] = [];
  // What memory held at each checkpoint: nothing past the cut may have been copied before the invalidation is served.
  const atCheckpoint: { nic: Uint8Array; acc: Uint8Array }[] = [];
  const dma = new DmaEngine(
    nic,
    shm,
    new BusDecoder(shm),
    () => {
      checkpoints.push(dma.moved);
      atCheckpoint.push({ nic: nic.mem!.slice(), acc: acc.mem!.slice() });
      since = atCheckpoint[atCheckpoint.length - 1];
    },
    () => (copying() ? pendingAt.includes(polls++) : decodePendingAt.includes(decodePolls++)),
  );
  const gathers: { n: number; lens: number[]; offsets: number[] }[] = [];
  dma.onGather = (g) => gathers.push({ n: g.n, lens: Array.from(g.len.subarray(0, g.n)), offsets: Array.from(g.offset.subarray(0, g.n)) });
  // A test that changes memory before its transfer marks that state as the start.
  const mark = () => (since = { nic: nic.mem!.slice(), acc: acc.mem!.slice() });
  return { dma, acc, nic, gathers, checkpoints, atCheckpoint, mark };
}

/** Slot i maps device page 2 * (PAGES - 1 - i): no two slots side by side map adjacent pages. */
const scattered = Array.from({ length: PAGES }, (_, i) => 2 * (PAGES - 1 - i));

t.test('a pending invalidation cuts the copies of a gathered step; onGather sees only the runs that moved', async (t) => {
  const { dma, acc, nic, gathers, checkpoints } = rig(scattered, [0]);
  t.equal(dma.transfer(bar2Base(0), 0, PAGES * PAGE_SIZE, false), null);
  t.same(
    gathers.map((g) => g.n),
    [POLL_PAGES, PAGES - POLL_PAGES],
    'the first step stopped at the first poll; the next one (after the checkpoint) copied the rest',
  );
  t.same(checkpoints[0], POLL_PAGES * PAGE_SIZE, 'the checkpoint after the cut step served it with the bytes before the cut moved');
  t.same(gathers[0].offsets, scattered.slice(0, POLL_PAGES).map((p) => p * PAGE_SIZE), 'the runs checked are the pages copied, in order');
  for (let i = 0; i < PAGES; i++) {
    const want = acc.mem!.subarray(scattered[i] * PAGE_SIZE, (scattered[i] + 1) * PAGE_SIZE);
    if (!Buffer.from(nic.mem!.subarray(i * PAGE_SIZE, (i + 1) * PAGE_SIZE)).equals(Buffer.from(want))) t.fail(`page ${i} copied wrong`);
  }
  t.pass('every page bit-exact');
});

const zero = (b: Uint8Array) => b.every((x) => x === 0);

t.test('a read cut at a poll has copied nothing past the cut when the invalidation is served', async (t) => {
  const { dma, atCheckpoint } = rig(scattered, [0]);
  t.equal(dma.transfer(bar2Base(0), 0, PAGES * PAGE_SIZE, false), null);
  const nic = atCheckpoint[0].nic;
  t.notOk(zero(nic.subarray(0, POLL_PAGES * PAGE_SIZE)), 'the pages before the cut were copied');
  t.ok(zero(nic.subarray(POLL_PAGES * PAGE_SIZE, PAGES * PAGE_SIZE)), 'the pages decoded past the cut were not');
});

t.test('a write cut at a poll has copied nothing past the cut when the invalidation is served', async (t) => {
  const { dma, acc, nic, gathers, atCheckpoint, mark } = rig(scattered, [0]);
  acc.mem!.fill(0);
  for (let i = 0; i < PAGES * PAGE_SIZE; i += 4) nic.mem![i] = (i / PAGE_SIZE + 1) & 0xff;
  mark();
  t.equal(dma.transfer(bar2Base(0), 0, PAGES * PAGE_SIZE, true), null);
  t.same(gathers.map((g) => g.n), [POLL_PAGES, PAGES - POLL_PAGES], 'the write stopped at the first poll too');
  const page = (m: Uint8Array, p: number) => m.subarray(p * PAGE_SIZE, (p + 1) * PAGE_SIZE);
  const before = atCheckpoint[0].acc;
  for (let i = 0; i < PAGES; i++) {
    const landed = !zero(page(before, scattered[i]));
    if (landed !== i < POLL_PAGES) t.fail(`slot ${i}: ${landed ? 'written past the cut' : 'not written before the cut'} at the checkpoint`);
    if (!Buffer.from(page(acc.mem!, scattered[i])).equals(Buffer.from(page(nic.mem!, i)))) t.fail(`slot ${i} written wrong`);
  }
  t.pass('before the checkpoint only the pages before the cut; in the end every page bit-exact');
});

t.test('a cut inside a run of adjacent pages trims that run to the bytes copied', async (t) => {
  // Slots 3 and 4 map adjacent pages 20, 21: one two-page run across the first poll.
  const slots = scattered.slice();
  slots[3] = 20;
  slots[4] = 21;
  const { dma, gathers } = rig(slots, [0]);
  t.equal(dma.transfer(bar2Base(0), 0, PAGES * PAGE_SIZE, false), null);
  t.equal(gathers[0].n, POLL_PAGES, 'runs of pages 0, 1, 2 and the two-page run of slots 3-4');
  t.equal(gathers[0].lens[POLL_PAGES - 1], PAGE_SIZE, 'the two-page run counts the one page copied before the cut');
  t.equal(gathers[1].offsets[0], 21 * PAGE_SIZE, 'the next step starts in the middle of that run');
});

t.test('a bad address decoded past a cut fails the transfer; the bytes before the cut moved', async (t) => {
  const slots = scattered.slice();
  slots[10] = -1;
  const { dma, gathers } = rig(slots, [0]);
  const err = dma.transfer(bar2Base(0), 0, PAGES * PAGE_SIZE, false);
  t.match(err, /nic0: DMA read from 0x[0-9a-f]+ aborted: .*BAR2 slot 10 of acc0, which maps no device page/);
  t.equal(dma.moved, POLL_PAGES * PAGE_SIZE, 'moved: the pages copied before the cut');
  t.equal(gathers.length, 1, 'the copied runs were still checked');
  t.equal(gathers[0].n, POLL_PAGES);
});

t.test('an invalidation pending while a step decodes ends it after one piece: the checkpoint comes before the rest is decoded', async (t) => {
  // Slot 10 maps nothing: a decode of the whole step would meet it (and fail the transfer) before any checkpoint.
  const slots = scattered.slice();
  slots[10] = -1;
  const { dma, gathers, checkpoints } = rig(slots, [], [0]);
  const err = dma.transfer(bar2Base(0), 0, PAGES * PAGE_SIZE, false);
  t.equal(checkpoints[0], POLL_PAGES * PAGE_SIZE, 'the first checkpoint came after one piece, before slot 10 was decoded');
  t.equal(gathers[0].n, POLL_PAGES, 'the first step decoded, copied and checked one piece of runs');
  t.match(err, /BAR2 slot 10 of acc0, which maps no device page/, 'a later step met the bad slot');
  t.equal(dma.moved, 10 * PAGE_SIZE, 'the pages before it moved');
});

t.test('with an onRun veto (the general decode) too, a pending invalidation stops the decode after one piece', async (t) => {
  const { dma, checkpoints } = rig(scattered, [], [0]);
  const vetoed: number[] = []; // onRun calls before each checkpoint
  let n = 0;
  dma.onRun = () => {
    n++;
    return null;
  };
  const checkpoint = checkpoints.push.bind(checkpoints);
  checkpoints.push = (...x: number[]) => {
    vetoed.push(n);
    return checkpoint(...x);
  };
  t.equal(dma.transfer(bar2Base(0), 0, PAGES * PAGE_SIZE, false), null);
  t.equal(vetoed[0], POLL_PAGES, 'one piece of runs decoded (each passing the veto) before the first checkpoint');
  t.equal(checkpoints[0], POLL_PAGES * PAGE_SIZE);
});

t.test('the BAR2 fast decode (no onRun) gathers the same runs as the general decode', async (t) => {
  // Pairs of adjacent pages and lone pages: runs merge as slotRunLen merges them.
  const slots = [5, 6, 9, 1, 2, 3, 14, 12, 13, 0, 7, 8, 4, 11, 10, 15];
  const runsOf = (veto: boolean) => {
    const { dma, gathers, nic } = rig(slots, []);
    if (veto) dma.onRun = () => null;
    t.equal(dma.transfer(bar2Base(0) + 100, 0, PAGES * PAGE_SIZE - 200, false), null);
    return { gathers, bytes: Buffer.from(nic.mem!) };
  };
  const fast = runsOf(false);
  const general = runsOf(true);
  t.same(fast.gathers, general.gathers, 'the same runs, offsets and lengths, step by step');
  t.ok(fast.bytes.equals(general.bytes), 'the same bytes copied');
  t.same(fast.gathers[0].lens.slice(0, 3), [PAGE_SIZE - 100 + PAGE_SIZE, PAGE_SIZE, 3 * PAGE_SIZE], 'a partial first page joined to its neighbour, a lone page, three adjacent pages');
});
