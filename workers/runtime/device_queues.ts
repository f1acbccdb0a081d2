/**
 * Device side of its queue pairs: drains submission queues, executes each
 * command through the device model, posts completions with the phase bit
 * and raises the interrupt (src/shm/ring.ts has the protocol).
 *
 * A pass executes at most BATCH commands per queue, so a device with a
 * deep queue still returns to its loop (invalidations, control calls)
 * regularly.
 */
import { busWordView, type BusDecoder } from '../../src/shm/bus_map.js';
import { DeviceCtl, DeviceStats, NR_QUEUES } from '../../src/shm/device_ctl.js';
import type { DeviceShm } from '../../src/shm/phys_mem.js';
import { CqProducer, CQE_BYTES, SqConsumer, SQE_BYTES, type SqCommand } from '../../src/shm/ring.js';
import type { QueueConfig } from '../../src/devices/protocol.js';
import { TraceEvent, traceSink } from '../../src/shm/trace_ring.js';

const BATCH = 4;

export interface CommandResult {
  readonly status: number;
  readonly result: number;
}

export type Execute = (cmd: SqCommand, qid: number) => CommandResult;

interface QueuePair {
  readonly sq: SqConsumer;
  readonly cq: CqProducer;
  readonly cfg: QueueConfig;
}

export class DeviceQueues {
  private readonly pairs: QueuePair[] = [];
  /** What this device last published in DeviceCtl.cqWait (set: stored again on every blocked poll). */
  private cqWait = false;

  constructor(
    private readonly self: DeviceShm,
    private readonly bus: BusDecoder,
    private readonly hostIrq: Int32Array,
  ) {}

  create(cfg: QueueConfig): void {
    if (!Number.isInteger(cfg.qid) || cfg.qid < 0 || cfg.qid >= NR_QUEUES) throw new RangeError(`${this.self.name}: queue id ${cfg.qid} out of range 0..${NR_QUEUES - 1}`);
    const what = `${this.self.name} queue ${cfg.qid}`;
    const sqView = cfg.sqLocal === undefined ? busWordView(this.bus, cfg.sqBus, cfg.entries * SQE_BYTES, `${what} SQ`) : this.localView(cfg.sqLocal, cfg.entries * SQE_BYTES, `${what} SQ`);
    const sq = new SqConsumer(sqView, cfg.entries, this.self.regs, cfg.qid);
    const cq = new CqProducer(busWordView(this.bus, cfg.cqBus, cfg.entries * CQE_BYTES, `${what} CQ`), cfg.entries, this.self.regs, cfg.qid);
    this.pairs[cfg.qid] = { sq, cq, cfg };
  }

  private localView(off: number, bytes: number, what: string): Int32Array {
    const mem = this.self.mem;
    if (!mem || off % 4 !== 0 || off < 0 || off + bytes > mem.length) throw new RangeError(`${what}: local ring [${off}, +${bytes}) is not inside ${this.self.name}'s ${mem?.length ?? 0}-byte memory`);
    return new Int32Array(mem.buffer, mem.byteOffset + off, bytes / 4);
  }

  /** Executes what the queues hold; true when any command completed, or a full CQ got room meanwhile (poll again at once). */
  poll(exec: Execute): boolean {
    let progress = false;
    let blocked = false;
    for (const p of this.pairs) {
      if (!p) continue;
      let posted = 0;
      while (posted < BATCH && p.sq.available() > 0 && !p.cq.full) {
        const cmd = p.sq.peek();
        const r = exec(cmd, p.cfg.qid);
        p.sq.pop();
        // Counted before the completion is posted: the kernel may read the count as soon as it sees the CQE.
        this.self.stats[DeviceStats.commands]++;
        p.cq.post({ cid: cmd.cid, status: r.status, result: r.result, sqHead: p.sq.headIndex }, p.cfg.qid);
        posted++;
      }
      if (posted > 0) {
        this.raise();
        progress = true;
      }
      if (p.sq.available() > 0 && p.cq.full) blocked = true;
    }
    return this.waitForRoom(blocked) || progress;
  }

  /**
   * Publishes whether a queue waits for CQ room (cqWait: the consumer's
   * reap wakes us only then, src/shm/ring.ts); after publishing it looks
   * at the heads again (the Dekker pair with CqConsumer.poll's head store):
   * true when a full CQ got room meanwhile.
   */
  private waitForRoom(blocked: boolean): boolean {
    if (blocked || this.cqWait) Atomics.store(this.self.ctl, DeviceCtl.cqWait, blocked ? 1 : 0);
    this.cqWait = blocked;
    if (!blocked) return false;
    for (const p of this.pairs) if (p && p.sq.available() > 0 && !p.cq.full) return true;
    return false;
  }

  /**
   * MSI to the host: the device's own irq count, then the host's line.
   * Pairs with the waitAsync on the host irq word in Machine.waitHostIrq.
   */
  private raise(): void {
    Atomics.add(this.self.ctl, DeviceCtl.irq, 1);
    const n = Atomics.add(this.hostIrq, 0, 1) + 1;
    Atomics.notify(this.hostIrq, 0);
    traceSink.w?.instant(TraceEvent.Msi, 0, n);
  }
}
