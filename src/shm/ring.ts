/**
 * NVMe-like queues in shared memory: a submission queue (SQ) the producer
 * fills and the device drains, a completion queue (CQ) the device fills with
 * a phase bit and the consumer drains. The rings live at bus addresses (in
 * system RAM, or inside a device BAR for use case [A]); the doorbells live
 * in the register file (BAR0) of the device that executes the queue.
 *
 * Protocol, after NVMe 1.4 section 4.1 / 4.6:
 *
 *   SQ producer                          device (SQ consumer, CQ producer)
 *   -----------                          --------------------------------
 *   write entry words at tail            tail = Atomics.load(SQyTDBL)
 *   tail = (tail + 1) % n                while head != tail: execute entry
 *   Atomics.store(SQyTDBL, tail)           write CQE words 0..2
 *   ringWake(device ctl)                   Atomics.store(CQE word 3 with phase)
 *                                        raise interrupt (host irq word)
 *   CQ consumer
 *   -----------
 *   while phase(CQE[head]) == expected: consume; head++ (flip expected on wrap)
 *   Atomics.store(CQyHDBL, head)         [Required: the device never
 *                                         overwrites an entry past CQyHDBL]
 *   load(cqWait) != 0: ringWake          CQ full with commands left:
 *                                          store(cqWait, 1); load(CQyHDBL)
 *                                          again; still full: sleep
 *
 * The consumer wakes the device only when it waits for CQ room (cqWait,
 * workers/runtime/device_queues.ts): the consumer stores the head before
 * it loads cqWait, the device stores cqWait before it loads the head
 * again, so one of them sees the other (a Dekker pair). A wake on every
 * reap woke a device asleep with nothing to do on ~80% of camera-farm's
 * reaps (a futex wake on main, a spurious wake-up on the device).
 *
 * The SQ producer learns how far the device has read from the sqHead field
 * of each CQE (as NVMe hosts do); the device learns how far the consumer
 * has read from CQyHDBL. A ring of n entries holds at most n - 1.
 */
import { defineLayout, loadU64, storeU64 } from './layout.js';
import { DeviceCtl, DeviceRegs, ringWake } from './device_ctl.js';

/** Submission queue entry: 16 words (64 bytes, as NVMe). */
export const SqEntry = defineLayout({
  opcode: { writer: 'peer', doc: 'device-specific operation' },
  cid: { writer: 'peer', doc: 'command identifier, echoed in the completion' },
  src: { words: 2, writer: 'peer', doc: 'source bus address (u64)' },
  dst: { words: 2, writer: 'peer', doc: 'destination bus address (u64)' },
  len: { words: 2, writer: 'peer', doc: 'byte count (u64)' },
  args: { words: 8, writer: 'peer', doc: 'device-specific arguments' },
});

/** Completion queue entry: 4 words (16 bytes, as NVMe). */
export const CqEntry = defineLayout({
  result: { writer: 'worker', doc: 'command-specific result (DW0)' },
  rsvd: { writer: 'worker', doc: 'reserved (DW1)' },
  sqHead: { writer: 'worker', doc: 'SQ head pointer after this command (DW2, low 16 bits) | SQ id << 16' },
  status: { writer: 'worker', doc: 'cid (low 16 bits) | phase << 16 | status << 17; stored last, with Atomics' },
});

export const SQE_WORDS = SqEntry.kFieldCount;
export const CQE_WORDS = CqEntry.kFieldCount;
export const SQE_BYTES = SqEntry.kBytes;
export const CQE_BYTES = CqEntry.kBytes;

/** Status codes carried in a completion. */
export const enum CqStatus {
  Success = 0,
  InvalidOpcode = 1,
  DataTransferError = 2,
  InvalidField = 3,
  Aborted = 4,
}

export interface SqCommand {
  opcode: number;
  cid: number;
  src: number;
  dst: number;
  len: number;
  args: readonly number[];
}

export interface Completion {
  cid: number;
  status: number;
  result: number;
  sqHead: number;
}

/** Where a queue's doorbells are: the executing device's BAR0 and its wake word. */
export interface Doorbells {
  readonly regs: Int32Array;
  readonly ctl: Int32Array;
  readonly qid: number;
}

function checkRing(view: Int32Array, entries: number, words: number, what: string): void {
  if (entries < 2) throw new RangeError(`${what}: a ring needs at least 2 entries, got ${entries}`);
  if (view.length < entries * words) throw new RangeError(`${what}: ring view holds ${view.length} words, needs ${entries * words}`);
}

export function writeSqe(view: Int32Array, slot: number, c: SqCommand): void {
  const b = slot * SQE_WORDS;
  if (c.args.length > SqEntry.fields.args.words) throw new RangeError(`SQE: ${c.args.length} args, at most ${SqEntry.fields.args.words}`);
  view[b + SqEntry.opcode] = c.opcode;
  view[b + SqEntry.cid] = c.cid;
  storeU64(view, b + SqEntry.src, c.src);
  storeU64(view, b + SqEntry.dst, c.dst);
  storeU64(view, b + SqEntry.len, c.len);
  for (let i = 0; i < SqEntry.fields.args.words; i++) view[b + SqEntry.args + i] = c.args[i] ?? 0;
}

export function readSqe(view: Int32Array, slot: number): SqCommand {
  const b = slot * SQE_WORDS;
  const args: number[] = [];
  for (let i = 0; i < SqEntry.fields.args.words; i++) args.push(view[b + SqEntry.args + i]);
  return {
    opcode: view[b + SqEntry.opcode],
    cid: view[b + SqEntry.cid],
    src: loadU64(view, b + SqEntry.src),
    dst: loadU64(view, b + SqEntry.dst),
    len: loadU64(view, b + SqEntry.len),
    args,
  };
}

/** Host or peer side of a submission queue. */
export class SqProducer {
  private tail = 0;
  /** Last SQ head reported by the device in a completion. */
  private head = 0;

  constructor(
    private readonly view: Int32Array,
    readonly entries: number,
    private readonly db: Doorbells,
  ) {
    checkRing(view, entries, SQE_WORDS, 'SQ');
  }

  get full(): boolean {
    return (this.tail + 1) % this.entries === this.head;
  }

  /** In flight = submitted and not yet reported consumed. */
  get inFlight(): number {
    return (this.tail - this.head + this.entries) % this.entries;
  }

  /** Returns false when the ring is full (nothing written). */
  submit(c: SqCommand): boolean {
    if (this.full) return false;
    writeSqe(this.view, this.tail, c);
    this.tail = (this.tail + 1) % this.entries;
    // Pairs with Atomics.load(SQyTDBL) in SqConsumer.available.
    Atomics.store(this.db.regs, DeviceRegs.sqTail + this.db.qid, this.tail);
    ringWake(this.db.ctl);
    return true;
  }

  /** Feeds back the device's SQ head from a completion. */
  retire(sqHead: number): void {
    this.head = sqHead;
  }
}

/** Device side of a submission queue. */
export class SqConsumer {
  private head = 0;

  constructor(
    private readonly view: Int32Array,
    readonly entries: number,
    private readonly regs: Int32Array,
    private readonly qid: number,
  ) {
    checkRing(view, entries, SQE_WORDS, 'SQ');
  }

  get headIndex(): number {
    return this.head;
  }

  /** Entries the producer has made visible. */
  available(): number {
    const tail = Atomics.load(this.regs, DeviceRegs.sqTail + this.qid);
    return (tail - this.head + this.entries) % this.entries;
  }

  peek(): SqCommand {
    return readSqe(this.view, this.head);
  }

  pop(): void {
    this.head = (this.head + 1) % this.entries;
  }
}

/** Device side of a completion queue. */
export class CqProducer {
  private tail = 0;
  private phase = 1;

  constructor(
    private readonly view: Int32Array,
    readonly entries: number,
    private readonly regs: Int32Array,
    private readonly qid: number,
  ) {
    checkRing(view, entries, CQE_WORDS, 'CQ');
  }

  get full(): boolean {
    return (this.tail + 1) % this.entries === Atomics.load(this.regs, DeviceRegs.cqHead + this.qid);
  }

  /** Returns false when the consumer has not freed a slot yet. */
  post(c: Completion, sqId: number): boolean {
    if (this.full) return false;
    const b = this.tail * CQE_WORDS;
    this.view[b + CqEntry.result] = c.result;
    this.view[b + CqEntry.rsvd] = 0;
    this.view[b + CqEntry.sqHead] = (c.sqHead & 0xffff) | (sqId << 16);
    // Stored last: a consumer that sees the new phase sees the whole entry.
    // Pairs with Atomics.load of the status word in CqConsumer.poll.
    Atomics.store(this.view, b + CqEntry.status, (c.cid & 0xffff) | (this.phase << 16) | (c.status << 17));
    this.tail = (this.tail + 1) % this.entries;
    if (this.tail === 0) this.phase ^= 1;
    return true;
  }
}

/** Host or peer side of a completion queue. */
export class CqConsumer {
  private head = 0;
  private phase = 1;

  constructor(
    private readonly view: Int32Array,
    readonly entries: number,
    private readonly db: Doorbells,
  ) {
    checkRing(view, entries, CQE_WORDS, 'CQ');
  }

  /** Next completion, or null when the entry at head still has the old phase. */
  poll(): Completion | null {
    const b = this.head * CQE_WORDS;
    const st = Atomics.load(this.view, b + CqEntry.status);
    if (((st >>> 16) & 1) !== this.phase) return null;
    const c: Completion = {
      cid: st & 0xffff,
      status: st >>> 17,
      result: this.view[b + CqEntry.result],
      sqHead: this.view[b + CqEntry.sqHead] & 0xffff,
    };
    this.head = (this.head + 1) % this.entries;
    if (this.head === 0) this.phase ^= 1;
    // Pairs with the Atomics.load(CQyHDBL) in CqProducer.full.
    Atomics.store(this.db.regs, DeviceRegs.cqHead + this.db.qid, this.head);
    // After the head store: pairs with the store of cqWait in DeviceQueues.poll.
    if (Atomics.load(this.db.ctl, DeviceCtl.cqWait) !== 0) ringWake(this.db.ctl);
    return c;
  }
}

/** Bytes a queue pair of n entries needs: SQ then CQ. */
export function queuePairBytes(entries: number): { sq: number; cq: number } {
  return { sq: entries * SQE_BYTES, cq: entries * CQE_BYTES };
}
