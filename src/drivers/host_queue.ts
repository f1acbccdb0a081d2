/**
 * A host-side NVMe-style queue pair on one device: rings in system RAM,
 * the kernel produces submissions and consumes completions (what the nvme
 * host driver's nvme_queue does). Completions are matched to submissions
 * by command id; `outstanding` tells a timeout whom to blame.
 *
 * Lifetime: create() allocates the rings and tells the device; destroy()
 * frees them (the device must be stopped first).
 */
import { PAGE_SIZE } from '../shm/constants.js';
import { CqConsumer, queuePairBytes, SqProducer, type Completion, type SqCommand } from '../shm/ring.js';
import type { Extent } from '../shm/page_alloc.js';
import type { Device, Machine } from '../devices/machine.js';
import { busWordView } from '../shm/bus_map.js';
import { DeviceError } from '../errors.js';
import type { Kernel } from '../kernel/kernel.js';

/** A zeroed ring of `bytes` in system RAM, one contiguous extent, with its bus address and word view. */
function ramRing(machine: Machine, bytes: number, what: string): { ext: Extent; bus: number; view: Int32Array } {
  const ext = machine.ram.allocContig(Math.ceil(bytes / PAGE_SIZE));
  const bus = ext.start * PAGE_SIZE;
  machine.shm.ram.fill(0, bus, bus + ext.count * PAGE_SIZE);
  return { ext, bus, view: busWordView(machine.bus, bus, bytes, what) };
}

export class HostQueue {
  private nextCid = 0;
  private readonly pending = new Map<number, unknown>();

  private constructor(
    readonly dev: Device,
    private readonly sq: SqProducer,
    private readonly cq: CqConsumer,
    private readonly extents: Extent[],
    private readonly machine: Machine,
  ) {}

  static async create(machine: Machine, dev: Device, qid: number, entries: number): Promise<HostQueue> {
    const bytes = queuePairBytes(entries);
    const sq = ramRing(machine, bytes.sq, `${dev.spec.name} SQ${qid}`);
    const cq = ramRing(machine, bytes.cq, `${dev.spec.name} CQ${qid}`);
    const db = { regs: dev.shm.regs, ctl: dev.shm.ctl, qid };
    await dev.handle.call('createQueue', { qid, entries, sqBus: sq.bus, cqBus: cq.bus, irq: { kind: 'host' } });
    return new HostQueue(dev, new SqProducer(sq.view, entries, db), new CqConsumer(cq.view, entries, db), [sq.ext, cq.ext], machine);
  }

  get entries(): number {
    return this.sq.entries;
  }

  get outstanding(): number {
    return this.pending.size;
  }

  get full(): boolean {
    return this.sq.full;
  }

  /** Submits a command with a fresh cid; `tag` comes back with its completion. False when the SQ is full. */
  submit(cmd: Omit<SqCommand, 'cid'>, tag: unknown): boolean {
    const cid = this.nextCid;
    if (!this.sq.submit({ ...cmd, cid })) return false;
    this.nextCid = (cid + 1) & 0xffff;
    this.pending.set(cid, tag);
    return true;
  }

  /** Drains the CQ: every completion with its submission's tag. */
  reap(): { c: Completion; tag: unknown }[] {
    const out: { c: Completion; tag: unknown }[] = [];
    for (let c = this.cq.poll(); c; c = this.cq.poll()) {
      this.sq.retire(c.sqHead);
      const tag = this.pending.get(c.cid);
      this.pending.delete(c.cid);
      out.push({ c, tag });
    }
    return out;
  }

  destroy(): void {
    for (const e of this.extents.splice(0)) this.machine.ram.freeExtent(e);
  }
}

/**
 * The host's half of a queue that a peer drives ([A]): the submission ring
 * lives in the device's own memory (sqLocal, reached by the peer through
 * the device's BAR), the completions come to the host in system RAM. The
 * host only consumes completions; it never submits.
 */
export class HostCompletionQueue {
  private constructor(
    readonly dev: Device,
    private readonly cq: CqConsumer,
    private readonly extent: Extent,
    private readonly machine: Machine,
  ) {}

  static async create(machine: Machine, dev: Device, qid: number, entries: number, sqLocal: number): Promise<HostCompletionQueue> {
    const cq = ramRing(machine, queuePairBytes(entries).cq, `${dev.spec.name} CQ${qid}`);
    await dev.handle.call('createQueue', { qid, entries, sqBus: 0, sqLocal, cqBus: cq.bus, irq: { kind: 'host' } });
    return new HostCompletionQueue(dev, new CqConsumer(cq.view, entries, { regs: dev.shm.regs, ctl: dev.shm.ctl, qid }), cq.ext, machine);
  }

  reap(): Completion[] {
    const out: Completion[] = [];
    for (let c = this.cq.poll(); c; c = this.cq.poll()) out.push(c);
    return out;
  }

  destroy(): void {
    this.machine.ram.freeExtent(this.extent);
  }
}

/**
 * A completion with an error status, as the device's own message: the
 * device logged why (bad address, refused mapping) under the sequence
 * number it put in the completion's result. With the `kernel`: when a
 * page request it refused is this failure's reason (the page and errno
 * the message ends with: Kernel.refusals), its line is appended (the
 * device got only the errno). A log that cannot be read is said so, with why.
 */
export async function completionError(dev: Device, c: Pick<Completion, 'status' | 'result'>, kernel?: Pick<Kernel, 'refusals'> | null): Promise<DeviceError> {
  const log = await dev.handle.call('errors').catch((e: unknown) => (e instanceof Error ? e : new Error(String(e))));
  if (log instanceof Error) return new DeviceError(dev.spec.name, 'device-error', `completion status ${c.status} (its error log could not be read: ${log.message})`);
  const rec = log.find((e) => e.seq === c.result);
  const msg = rec?.message ?? `completion status ${c.status}`;
  return new DeviceError(dev.spec.name, 'device-error', rec && kernel ? kernel.refusals(dev.spec.name).explain(msg) : msg);
}
