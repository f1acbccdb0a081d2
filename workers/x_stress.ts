/**
 * The stress importer (`peervma stress`): a device bound to a process that,
 * on its own, streams reads and writes over the buffers of the job table
 * (src/shm/stress_layout.ts) through its VaSpace — P2P through an
 * exporter's BAR, HMM device-private pages (its own, locally, or a peer's
 * through the peer's BAR), system RAM — while the kernel invalidates under
 * it. The `x-` prefix marks it a test device.
 *
 * Every page it writes carries a self-describing payload (owner, buffer,
 * page, epoch, seq, checksum). It reads back the buffers it writes and
 * judges each page against its own shadow (the seqs it wrote there this
 * epoch): poison through a translation it believes valid, an older seq, an
 * old epoch, or a torn/foreign page is a violation, recorded with the
 * kernel's schedule step. Pages of buffers other devices write are only
 * checked for poison (their writer may be mid-write).
 *
 * Commands: stress-attach { shm, slot, seed }, stress-shadow {} -> per own
 * buffer its epoch and the accepted seqs of every page.
 */
import { PAGE_SIZE, POISON_BYTE } from '../src/shm/constants.js';
import { loadU64 } from '../src/shm/layout.js';
import { CqStatus } from '../src/shm/ring.js';
import { judgePage, STRESS_MAX_BUFS, STRESS_VIOLATION_RECORDS, StressBuf, stressBufWord, stressDevWord, StressDevStat, StressHdr, StressInject, StressViolation, StressViolationKind, writePayload } from '../src/shm/stress_layout.js';
import type { CmdHandlers, StressOps, StressShadow } from '../src/devices/protocol.js';
import type { DeviceContext, DeviceModel } from './runtime/device_model.js';

/** Pages per burst (the scratch area holds one write and one read burst). */
const BURST_PAGES = 8;
const POISON_WORD = POISON_BYTE * 0x01010101;

interface Shadow {
  epoch: number;
  /** Seqs a page may hold (null: never written this epoch, so zero only). */
  acc: (number[] | null)[];
}

export function createStress(ctx: DeviceContext): DeviceModel {
  const name = ctx.self.name;
  const mem = ctx.self.mem;
  if (!mem || mem.length < 2 * BURST_PAGES * PAGE_SIZE) throw new Error(`${name}: an x-stress device needs ${2 * BURST_PAGES * 4} KiB of local memory for its bursts`);
  const local = new Int32Array(mem.buffer, mem.byteOffset, mem.length >> 2);
  const readOff = BURST_PAGES * PAGE_SIZE;
  const sleeper = new Int32Array(new SharedArrayBuffer(4));
  let shm: Int32Array | null = null;
  let dw = 0;
  let rng = 1;
  let seq = 0;
  let next = 0;
  const shadows = new Map<number, Shadow>();

  const rand = (n: number): number => {
    rng ^= rng << 13;
    rng ^= rng >>> 17;
    rng ^= rng << 5;
    return (rng >>> 0) % n;
  };

  function violation(kind: StressViolationKind, buf: number, page: number, seen: number, expected: number): void {
    const s = shm!;
    const n = Atomics.add(s, dw + StressDevStat.violations, 1);
    const w = dw + StressDevStat.records + (n % STRESS_VIOLATION_RECORDS) * StressViolation.kFieldCount;
    s[w + StressViolation.kind] = kind;
    s[w + StressViolation.buf] = buf;
    s[w + StressViolation.page] = page;
    s[w + StressViolation.step] = Atomics.load(s, StressHdr.step);
    s[w + StressViolation.seen] = seen;
    s[w + StressViolation.expected] = expected;
  }

  function shadowOf(buf: number, epoch: number, npages: number): Shadow {
    let sh = shadows.get(buf);
    if (!sh || sh.epoch !== epoch) {
      sh = { epoch, acc: new Array<number[] | null>(npages).fill(null) };
      shadows.set(buf, sh);
    }
    return sh;
  }

  function injected(): void {
    const f = Atomics.load(shm!, dw + StressDevStat.inject);
    if (f === StressInject.Throw) throw new Error(`${name}: injected crash (stress --inject crash)`);
    if (f === StressInject.Exit) process.exit(3);
    if (f === StressInject.Hang) for (;;); // never acks again; only worker.terminate() ends it
  }

  /** One burst over one buffer; true when it did work. */
  function pass(): boolean {
    const s = shm!;
    injected();
    if (Atomics.load(s, StressHdr.run) !== 1) return false;
    const nbufs = Atomics.load(s, StressHdr.nbufs);
    if (nbufs === 0) return false;
    const buf = next++ % nbufs;
    const bw = stressBufWord(buf);
    const epoch = Atomics.load(s, bw + StressBuf.epoch);
    if (epoch & 1) return true; // being replaced
    const va = loadU64(s, bw + StressBuf.va);
    const npages = Atomics.load(s, bw + StressBuf.npages);
    const mine = Atomics.load(s, bw + StressBuf.writer) === ctx.self.index;
    const p0 = rand(npages);
    const n = Math.min(1 + rand(BURST_PAGES), npages - p0);
    const vs = ctx.va();
    // Fault only the burst: K importers x BURST_PAGES fit the exporter's BAR
    // window at once, so two importers cannot evict each other's run in
    // flight forever (a BAR thrash livelock).
    const end = va + (p0 + n) * PAGE_SIZE;
    if (mine && rand(2) === 0) {
      const sh = shadowOf(buf, epoch, npages);
      const q = ++seq;
      for (let i = 0; i < n; i++) writePayload(local, (i * PAGE_SIZE) >> 2, ctx.self.index, buf, p0 + i, epoch, q);
      const err = vs.write(va + p0 * PAGE_SIZE, 0, n * PAGE_SIZE, end);
      for (let i = 0; i < n; i++) {
        const a = sh.acc[p0 + i];
        // A failed burst may have landed on any prefix of its pages.
        sh.acc[p0 + i] = err === null ? [q] : [...(a ?? []), q];
      }
      if (err !== null) return failed();
      Atomics.add(s, dw + StressDevStat.pagesWritten, n);
      return true;
    }
    const err = vs.read(va + p0 * PAGE_SIZE, readOff, n * PAGE_SIZE, end);
    if (err !== null) return failed();
    // The buffer was replaced while we read: the bytes may be of either mapping.
    if (Atomics.load(s, bw + StressBuf.epoch) !== epoch) return true;
    const sh = mine ? shadowOf(buf, epoch, npages) : null;
    for (let i = 0; i < n; i++) {
      const page = p0 + i;
      const st = judgePage(local, (readOff + i * PAGE_SIZE) >> 2, POISON_WORD);
      if (st.kind === 'poison') {
        violation(StressViolationKind.PoisonRead, buf, page, -1, -1);
        continue;
      }
      if (!sh || st.kind === 'zero') continue; // a cleared page (DONTNEED) reads zero
      const acc = sh.acc[page];
      const last = acc ? acc[acc.length - 1] : -1;
      if (st.kind === 'corrupt') violation(StressViolationKind.CorruptData, buf, page, -1, last);
      else if (st.owner !== ctx.self.index || st.buf !== buf || st.page !== page) violation(StressViolationKind.CorruptData, buf, page, st.seq, last);
      else if (st.epoch !== epoch || !acc || !acc.includes(st.seq)) violation(StressViolationKind.StaleData, buf, page, st.seq, last);
    }
    Atomics.add(s, dw + StressDevStat.pagesRead, n);
    return true;
  }

  function failed(): boolean {
    Atomics.add(shm!, dw + StressDevStat.ioErrors, 1);
    Atomics.wait(sleeper, 0, 0, 1); // a fenced or unmapped target: do not spin on it
    return true;
  }

  const commands: CmdHandlers<keyof StressOps> = {
    'stress-attach': (cmd) => {
      shm = new Int32Array(cmd.shm);
      dw = stressDevWord(cmd.slot);
      rng = (cmd.seed * 2654435761 + ctx.self.index * 40503 + 1) | 0 || 1;
      return { errno: 0 };
    },
    'stress-shadow': () => {
      // A device told to hang or crash does so here too: an idle device may be
      // asked for its shadow before its next pass would have seen the flag.
      injected();
      const out: StressShadow[] = [];
      for (const [buf, sh] of shadows) if (buf < STRESS_MAX_BUFS) out.push({ buf, epoch: sh.epoch, acc: sh.acc });
      return { errno: 0, shadows: out };
    },
  };

  return {
    execute() {
      return { status: CqStatus.InvalidOpcode, result: ctx.logError(`${name}: the x-stress device takes no queue commands`) };
    },
    poll: () => (shm ? pass() : false),
    commands,
  };
}
