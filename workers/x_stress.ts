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
import { judgePage, STRESS_MAX_BUFS, StressBuf, stressBufWord, stressDevWord, StressDevStat, stressKindWord, StressHdr, StressInject, stressRecordWord, StressViolation, StressViolationKind, writePayload } from '../src/shm/stress_layout.js';
import type { CmdHandlers, DeviceCmd, DeviceReply, StressOps, StressShadow } from '../src/devices/protocol.js';
import type { CommandResult } from './runtime/device_queues.js';
import type { DeviceContext, DeviceModel } from './runtime/device_model.js';
import type { VaSpace } from './runtime/va_space.js';

/** Pages per burst (the scratch area holds one write and one read burst). */
const BURST_PAGES = 8;
const POISON_WORD = POISON_BYTE * 0x01010101;
/** Byte offset of the read burst in local memory (the write burst is at 0). */
const READ_OFF = BURST_PAGES * PAGE_SIZE;

interface Shadow {
  epoch: number;
  /** Seqs a page may hold (null: never written this epoch, so zero only). */
  acc: (number[] | null)[];
}

/** One burst picked by a pass: which pages of which buffer, at which epoch. */
interface Burst {
  readonly buf: number;
  /** The buffer's first word in the job table. */
  readonly bw: number;
  readonly epoch: number;
  readonly va: number;
  readonly npages: number;
  /** This device writes the buffer (it keeps its shadow). */
  readonly mine: boolean;
  /** First page and page count of the burst. */
  readonly p0: number;
  readonly n: number;
  /** End of the burst's range: only the burst is faulted. */
  readonly end: number;
  readonly vs: VaSpace;
}

/**
 * The stress importer. Lifetime: one per worker, built by createStress;
 * idle until stress-attach gives it the job table, then one burst per poll.
 * The shadows live as long as the device (a new epoch replaces a buffer's).
 */
class StressDevice implements DeviceModel {
  private readonly name: string;
  private readonly local: Int32Array;
  /** A word nobody wakes: failed() sleeps on it. */
  private readonly sleeper = new Int32Array(new SharedArrayBuffer(4));
  /** The job table, from stress-attach (null until then: poll does nothing). */
  private shm: Int32Array | null = null;
  /** This device's position among the stress devices, and its first word in the job table. */
  private slot = 0;
  private dw = 0;
  private rng = 1;
  private seq = 0;
  /** Round-robin buffer index of the next pass. */
  private next = 0;
  private readonly shadows = new Map<number, Shadow>();

  constructor(private readonly ctx: DeviceContext) {
    this.name = ctx.self.name;
    const mem = ctx.self.mem;
    if (!mem || mem.length < 2 * BURST_PAGES * PAGE_SIZE) throw new Error(`${this.name}: an x-stress device needs ${2 * BURST_PAGES * 4} KiB of local memory for its bursts`);
    this.local = new Int32Array(mem.buffer, mem.byteOffset, mem.length >> 2);
  }

  execute(): CommandResult {
    return { status: CqStatus.InvalidOpcode, result: this.ctx.logError(`${this.name}: the x-stress device takes no queue commands`) };
  }

  poll(): boolean {
    return this.shm ? this.pass(this.shm) : false;
  }

  readonly commands = {
    'stress-attach': (cmd) => this.attach(cmd),
    'stress-shadow': () => this.shadow(),
  } satisfies CmdHandlers<keyof StressOps>;

  private attach(cmd: DeviceCmd<'stress-attach'>): DeviceReply<'stress-attach'> {
    this.shm = new Int32Array(cmd.shm);
    this.slot = cmd.slot;
    this.dw = stressDevWord(cmd.slot);
    this.rng = (cmd.seed * 2654435761 + this.ctx.self.index * 40503 + 1) | 0 || 1;
    return { errno: 0 };
  }

  private shadow(): DeviceReply<'stress-shadow'> {
    // A device told to hang or crash does so here too: an idle device may be
    // asked for its shadow before its next pass would have seen the flag.
    this.injected();
    const out: StressShadow[] = [];
    for (const [buf, sh] of this.shadows) if (buf < STRESS_MAX_BUFS) out.push({ buf, epoch: sh.epoch, acc: sh.acc });
    return { errno: 0, shadows: out };
  }

  /** xorshift32: the device's own seeded stream. */
  private rand(n: number): number {
    let r = this.rng;
    r ^= r << 13;
    r ^= r >>> 17;
    r ^= r << 5;
    this.rng = r;
    return (r >>> 0) % n;
  }

  private violation(kind: StressViolationKind, buf: number, page: number, seen: number, expected: number): void {
    const s = this.shm!;
    // This thread is the counts' only writer: the record is filled first and
    // published by the count's store, so a reader that sees count n + 1 reads
    // record n whole (before, a wrapped ring showed record n - 64's kind).
    // The per-kind counter is bumped before that store, so it never lags the
    // records a reader sees; it stays exact when later records overwrite the ring.
    const n = Atomics.load(s, this.dw + StressDevStat.violations);
    const w = stressRecordWord(this.slot, n);
    s[w + StressViolation.kind] = kind;
    s[w + StressViolation.buf] = buf;
    s[w + StressViolation.page] = page;
    s[w + StressViolation.step] = Atomics.load(s, StressHdr.step);
    s[w + StressViolation.seen] = seen;
    s[w + StressViolation.expected] = expected;
    Atomics.add(s, stressKindWord(this.slot, kind), 1);
    Atomics.store(s, this.dw + StressDevStat.violations, n + 1);
  }

  private shadowOf(buf: number, epoch: number, npages: number): Shadow {
    let sh = this.shadows.get(buf);
    if (!sh || sh.epoch !== epoch) {
      sh = { epoch, acc: new Array<number[] | null>(npages).fill(null) };
      this.shadows.set(buf, sh);
    }
    return sh;
  }

  private injected(): void {
    const f = Atomics.load(this.shm!, this.dw + StressDevStat.inject);
    if (f === StressInject.Throw) throw new Error(`${this.name}: injected crash (stress --inject crash)`);
    if (f === StressInject.Exit) process.exit(3);
    if (f === StressInject.Hang) for (;;); // never acks again; only worker.terminate() ends it
  }

  /** One burst over one buffer (round robin); true when it did work. */
  private pass(s: Int32Array): boolean {
    this.injected();
    if (Atomics.load(s, StressHdr.run) !== 1) return false;
    const nbufs = Atomics.load(s, StressHdr.nbufs);
    if (nbufs === 0) return false;
    const buf = this.next++ % nbufs;
    const bw = stressBufWord(buf);
    const epoch = Atomics.load(s, bw + StressBuf.epoch);
    if (epoch & 1) return true; // being replaced
    const va = loadU64(s, bw + StressBuf.va);
    const npages = Atomics.load(s, bw + StressBuf.npages);
    const mine = Atomics.load(s, bw + StressBuf.writer) === this.ctx.self.index;
    const p0 = this.rand(npages);
    const n = Math.min(1 + this.rand(BURST_PAGES), npages - p0);
    // Fault only the burst: K importers x BURST_PAGES fit the exporter's BAR
    // window at once, so two importers cannot evict each other's run in
    // flight forever (a BAR thrash livelock).
    const b: Burst = { buf, bw, epoch, va, npages, mine, p0, n, end: va + (p0 + n) * PAGE_SIZE, vs: this.ctx.va() };
    return mine && this.rand(2) === 0 ? this.writeBurst(s, b) : this.readBurst(s, b);
  }

  /** Writes the burst's pages with a new seq and records it in the shadow. */
  private writeBurst(s: Int32Array, b: Burst): boolean {
    const sh = this.shadowOf(b.buf, b.epoch, b.npages);
    const q = ++this.seq;
    for (let i = 0; i < b.n; i++) writePayload(this.local, (i * PAGE_SIZE) >> 2, this.ctx.self.index, b.buf, b.p0 + i, b.epoch, q);
    const err = b.vs.write(b.va + b.p0 * PAGE_SIZE, 0, b.n * PAGE_SIZE, b.end);
    for (let i = 0; i < b.n; i++) {
      const a = sh.acc[b.p0 + i];
      // A failed burst may have landed on any prefix of its pages.
      sh.acc[b.p0 + i] = err === null ? [q] : [...(a ?? []), q];
    }
    if (err !== null) return this.failed();
    Atomics.add(s, this.dw + StressDevStat.pagesWritten, b.n);
    return true;
  }

  /** Reads the burst back and judges every page (poison always; against the shadow when this device writes the buffer). */
  private readBurst(s: Int32Array, b: Burst): boolean {
    const err = b.vs.read(b.va + b.p0 * PAGE_SIZE, READ_OFF, b.n * PAGE_SIZE, b.end);
    if (err !== null) return this.failed();
    // The buffer was replaced while we read: the bytes may be of either mapping.
    if (Atomics.load(s, b.bw + StressBuf.epoch) !== b.epoch) return true;
    const sh = b.mine ? this.shadowOf(b.buf, b.epoch, b.npages) : null;
    for (let i = 0; i < b.n; i++) this.judge(b, sh, i);
    Atomics.add(s, this.dw + StressDevStat.pagesRead, b.n);
    return true;
  }

  /** Page i of a read burst: poison, then (own buffers) corrupt, foreign or stale against the shadow. */
  private judge(b: Burst, sh: Shadow | null, i: number): void {
    const page = b.p0 + i;
    const st = judgePage(this.local, (READ_OFF + i * PAGE_SIZE) >> 2, POISON_WORD);
    if (st.kind === 'poison') {
      this.violation(StressViolationKind.PoisonRead, b.buf, page, -1, -1);
      return;
    }
    if (!sh || st.kind === 'zero') return; // a cleared page (DONTNEED) reads zero
    const acc = sh.acc[page];
    const last = acc ? acc[acc.length - 1] : -1;
    if (st.kind === 'corrupt') this.violation(StressViolationKind.CorruptData, b.buf, page, -1, last);
    else if (st.owner !== this.ctx.self.index || st.buf !== b.buf || st.page !== page) this.violation(StressViolationKind.CorruptData, b.buf, page, st.seq, last);
    else if (st.epoch !== b.epoch || !acc || !acc.includes(st.seq)) this.violation(StressViolationKind.StaleData, b.buf, page, st.seq, last);
  }

  private failed(): boolean {
    Atomics.add(this.shm!, this.dw + StressDevStat.ioErrors, 1);
    Atomics.wait(this.sleeper, 0, 0, 1); // a fenced or unmapped target: do not spin on it
    return true;
  }
}

export function createStress(ctx: DeviceContext): DeviceModel {
  return new StressDevice(ctx);
}
