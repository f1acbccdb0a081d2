/**
 * The NVMe controller: a namespace of blocks kept in its own device memory,
 * host queue pairs (rings in system RAM, run by the device runtime) and CMB
 * queue pairs (rings and a data area in its controller memory buffer, run
 * here), so a peer can drive it with no CPU — RFC use case [A], workload (1).
 * Command ABI: src/devices/nvme_abi.ts.
 *
 * CMB queue protocol (the ring protocol of src/shm/ring.ts, the peer being
 * the producer; the doorbells are BAR0 bus writes):
 *
 *   peer (NIC)                               nvme (poll, this file)
 *   ----------                               ----------------------
 *   DMA-write data into the CMB data slot
 *   DMA-write the SQE into the CMB SQ
 *   DMA-write SQ tail -> BAR0 sqTail[qid]    tail = Atomics.load(sqTail[qid])
 *     (dma_engine: Atomics.store + wake)     execute SQE, copy CMB <-> blocks
 *                                            post CQE (status word last, Atomics)
 *   wait on own wake word              <---  MSI: DMA-write count -> peer BAR0
 *   DMA-read CQE at head; phase?             (peer register store + wake)
 *   DMA-read the data slot (READ)
 *   DMA-write CQ head -> BAR0 cqHead[qid]    [Required: a CQE is never
 *                                             overwritten before the peer
 *                                             moved cqHead past it]
 *
 * Invariants: the namespace and CMB pages are placed by the driver (they
 * come from the kernel's allocator of this memory); the model touches only
 * what nvme-format / nvme-create-cmb-queue gave it. Commands of a queue run
 * in order, so "the data a READ returns is the last WRITE before it in the
 * queue" holds per queue.
 */
import { DeviceStats, NR_QUEUES } from '../src/shm/device_ctl.js';
import { CqProducer, CqStatus, SqConsumer, CQE_BYTES, SQE_BYTES, type SqCommand } from '../src/shm/ring.js';
import { NVME_ADMIN_BYTES, NVME_ARG_FLAGS, NVME_ARG_LBA, NVME_F_CMB, NVME_HOST_QID, NVME_OP_READ, NVME_OP_WRITE, type NvmeCounters } from '../src/devices/nvme_abi.js';
import type { CmdHandlers, DeviceCmd, DeviceReply, NvmeOps } from '../src/devices/protocol.js';
import type { CommandResult } from './runtime/device_queues.js';
import type { DeviceContext, DeviceModel } from './runtime/device_model.js';

/**
 * Commands one CMB queue executes per poll before the loop looks at
 * invalidations and control calls again. The MSI is coalesced over the
 * batch (NVMe Interrupt Coalescing, Feature 08h: an aggregation threshold
 * of CMB_BATCH entries, and "no more work" as the aggregation time), so a
 * peer that submits a whole queue depth at once gets one interrupt for it.
 */
const CMB_BATCH = 64;

interface Namespace {
  readonly blockOff: number;
  readonly blocks: number;
}

/**
 * The controller's own working memory: the first NVME_ADMIN_BYTES of its
 * local memory, which Machine reserves for the model (device_kinds.ts
 * minMemBytes), so no driver allocates it. Word 0: the MSI data.
 */
const ADMIN_OFF = 0;
const MSI_WORD = 0;

interface CmbQueue {
  readonly qid: number;
  readonly sq: SqConsumer;
  readonly cq: CqProducer;
  readonly dataOff: number;
  readonly dataBytes: number;
  readonly msiAddr: number;
}

type Counters = { -readonly [K in keyof Omit<NvmeCounters, 'errno'>]: number };

/** The controller. Lifetime: one per worker, built by createNvme; nvme-format and nvme-create-cmb-queue configure it once. */
class NvmeController implements DeviceModel {
  private readonly name: string;
  private readonly mem: Uint8Array;
  private readonly blockBytes: number;
  /** Test knob (x- prefix): flip one byte of the data the Nth READ returns (the namespace itself stays intact), so tests prove the checker's shadow copy catches a controller that returns wrong data. */
  private readonly corruptRead: number | undefined;
  private readonly corruptOffset: number;
  private readonly admin: Int32Array;
  private ns: Namespace | null = null;
  private readonly cmb: CmbQueue[] = [];
  private readonly c: Counters = { reads: 0, writes: 0, blocksRead: 0, blocksWritten: 0, cmbCommands: 0, hostCommands: 0, msis: 0, corrupted: 0 };

  constructor(private readonly ctx: DeviceContext) {
    this.name = ctx.self.name;
    const mem = ctx.self.mem;
    if (!mem) throw new Error(`${this.name}: an nvme needs local memory (namespace and CMB)`);
    if (mem.length < NVME_ADMIN_BYTES) throw new Error(`${this.name}: an nvme needs at least ${NVME_ADMIN_BYTES} bytes of local memory`);
    this.mem = mem;
    this.blockBytes = (ctx.props.blockBytes as number | undefined) ?? 4096;
    this.corruptRead = ctx.props['x-corrupt-read'] as number | undefined;
    this.corruptOffset = (ctx.props['x-corrupt-offset'] as number | undefined) ?? 0;
    this.admin = new Int32Array(mem.buffer, mem.byteOffset + ADMIN_OFF, NVME_ADMIN_BYTES / 4);
  }

  execute(cmd: SqCommand): CommandResult {
    this.c.hostCommands++;
    return this.rw(cmd, null);
  }

  poll(): boolean {
    return this.pollCmb();
  }

  readonly commands = {
    'nvme-format': (cmd) => this.format(cmd),
    'nvme-create-cmb-queue': (cmd) => this.createCmbQueue(cmd),
    'nvme-counters': () => {
      const r: NvmeCounters = { errno: 0, ...this.c };
      return r;
    },
  } satisfies CmdHandlers<keyof NvmeOps>;

  private fail(status: CqStatus, message: string): CommandResult {
    return { status, result: this.ctx.logError(`${this.name}: ${message}`) };
  }

  private inMem(off: number, bytes: number): boolean {
    return Number.isInteger(off) && off >= 0 && off + bytes <= this.mem.length;
  }

  /** One READ or WRITE; `q` is the CMB queue it came from, null for a host queue. */
  private rw(cmd: SqCommand, q: CmbQueue | null): CommandResult {
    const write = cmd.opcode === NVME_OP_WRITE;
    const bad = this.checkRw(cmd, write, q);
    if (bad) return bad;
    const nblk = cmd.len / this.blockBytes;
    const blk = this.ns!.blockOff + cmd.args[NVME_ARG_LBA] * this.blockBytes;
    const readIndex = write ? -1 : this.c.reads;
    const err = cmd.args[NVME_ARG_FLAGS] & NVME_F_CMB ? this.cmbCopy(cmd, write, q!, blk, readIndex) : this.busCopy(cmd, write, blk, readIndex);
    if (err) return { status: CqStatus.DataTransferError, result: this.ctx.logError(err) };
    if (write) {
      this.c.writes++;
      this.c.blocksWritten += nblk;
    } else {
      this.c.reads++;
      this.c.blocksRead += nblk;
    }
    return { status: CqStatus.Success, result: nblk };
  }

  /** The failure a READ/WRITE gets before any data moves (opcode, namespace, range, flags, CMB data area), or null. */
  private checkRw(cmd: SqCommand, write: boolean, q: CmbQueue | null): CommandResult | null {
    if (!write && cmd.opcode !== NVME_OP_READ) return this.fail(CqStatus.InvalidOpcode, `unknown opcode ${cmd.opcode}`);
    const ns = this.ns;
    if (!ns) return this.fail(CqStatus.InvalidField, 'no namespace (nvme-format first)');
    const lba = cmd.args[NVME_ARG_LBA];
    const flags = cmd.args[NVME_ARG_FLAGS];
    const nblk = cmd.len / this.blockBytes;
    const op = write ? 'WRITE' : 'READ';
    if (!Number.isInteger(nblk) || nblk <= 0) return this.fail(CqStatus.InvalidField, `${op} of ${cmd.len} bytes is not whole ${this.blockBytes}-byte blocks`);
    if (lba < 0 || lba + nblk > ns.blocks) return this.fail(CqStatus.InvalidField, `${op} of blocks [${lba}, +${nblk}) outside the namespace of ${ns.blocks} blocks`);
    if ((flags & ~NVME_F_CMB) !== 0) return this.fail(CqStatus.InvalidField, `${op} with unknown flags 0x${flags.toString(16)}`);
    if ((flags & NVME_F_CMB) === 0) return null;
    const ptr = write ? cmd.src : cmd.dst;
    if (!q) return this.fail(CqStatus.InvalidField, `${op} with NVME_F_CMB on a host queue (no CMB data area)`);
    if (ptr < 0 || ptr + cmd.len > q.dataBytes) return this.fail(CqStatus.InvalidField, `${op}: CMB data [${ptr}, +${cmd.len}) outside queue ${q.qid}'s ${q.dataBytes}-byte data area`);
    return null;
  }

  /** Controller-internal copy between its CMB data area and its namespace: no bus. */
  private cmbCopy(cmd: SqCommand, write: boolean, q: CmbQueue, blk: number, readIndex: number): null {
    const mem = this.mem;
    const at = q.dataOff + (write ? cmd.src : cmd.dst);
    const t0 = performance.now();
    if (write) mem.copyWithin(blk, at, at + cmd.len);
    else {
      mem.copyWithin(at, blk, blk + cmd.len);
      if (readIndex === this.corruptRead) {
        mem[at + (this.corruptOffset % cmd.len)] ^= 0xff;
        this.c.corrupted++;
      }
    }
    this.ctx.self.stats[DeviceStats.bytesLocal] += cmd.len;
    this.ctx.self.stats[DeviceStats.dmaNs] += (performance.now() - t0) * 1e6;
    return null;
  }

  /** DMA between a bus address (host queue: RAM) and the namespace; an error message or null. */
  private busCopy(cmd: SqCommand, write: boolean, blk: number, readIndex: number): string | null {
    if (write) return this.ctx.dma.read(cmd.src, blk, cmd.len);
    // The corrupted byte is flipped for the DMA only: the namespace stays intact.
    const flip = readIndex === this.corruptRead ? blk + (this.corruptOffset % cmd.len) : -1;
    if (flip >= 0) this.mem[flip] ^= 0xff;
    const err = this.ctx.dma.write(cmd.dst, blk, cmd.len);
    if (flip >= 0) {
      this.mem[flip] ^= 0xff;
      this.c.corrupted++;
    }
    return err;
  }

  /** MSI to the peer: DMA-write the completion count to its register (dma_engine stores it and wakes the owner). */
  private msi(q: CmbQueue): void {
    if (q.msiAddr === 0) return;
    this.admin[MSI_WORD] = ++this.c.msis;
    const err = this.ctx.dma.write(q.msiAddr, ADMIN_OFF + MSI_WORD * 4, 4);
    if (err) this.ctx.logError(`${this.name}: MSI of queue ${q.qid}: ${err}`);
  }

  private pollCmb(): boolean {
    let progress = false;
    for (const q of this.cmb) {
      if (!q) continue;
      let posted = 0;
      while (posted < CMB_BATCH && q.sq.available() > 0 && !q.cq.full) {
        const cmd = q.sq.peek();
        const r = this.rw(cmd, q);
        q.sq.pop();
        q.cq.post({ cid: cmd.cid, status: r.status, result: r.result, sqHead: q.sq.headIndex }, q.qid);
        posted++;
        this.c.cmbCommands++;
        this.ctx.self.stats[DeviceStats.commands]++;
      }
      if (posted > 0) {
        this.msi(q);
        progress = true;
      }
    }
    return progress;
  }

  private format(cmd: DeviceCmd<'nvme-format'>): DeviceReply<'nvme-format'> {
    const { blockOff, blocks } = cmd;
    if (!Number.isInteger(blocks) || blocks <= 0 || !this.inMem(blockOff, blocks * this.blockBytes)) return { errno: 'EINVAL', message: `${this.name}: namespace of ${blocks} blocks at ${blockOff} does not fit its ${this.mem.length}-byte memory` };
    if (blockOff < NVME_ADMIN_BYTES) return { errno: 'EINVAL', message: `${this.name}: namespace at ${blockOff} overlaps the controller's working memory [0, ${NVME_ADMIN_BYTES})` };
    this.mem.fill(0, blockOff, blockOff + blocks * this.blockBytes);
    this.ns = { blockOff, blocks };
    return { errno: 0, blockBytes: this.blockBytes };
  }

  private createCmbQueue(cmd: DeviceCmd<'nvme-create-cmb-queue'>): DeviceReply<'nvme-create-cmb-queue'> {
    const { qid, entries, sqOff, cqOff, dataOff, dataBytes } = cmd;
    if (!this.ns) return { errno: 'EINVAL', message: `${this.name}: create a CMB queue after nvme-format ` };
    if (!Number.isInteger(qid) || qid === NVME_HOST_QID || qid < 0 || qid >= NR_QUEUES) return { errno: 'EINVAL', message: `${this.name}: CMB queue id ${qid} (1..${NR_QUEUES - 1}; qid ${NVME_HOST_QID} is the host's)` };
    if (this.cmb[qid]) return { errno: 'EBUSY', message: `${this.name}: CMB queue ${qid} exists` };
    for (const [off, bytes, what] of [[sqOff, entries * SQE_BYTES, 'SQ'], [cqOff, entries * CQE_BYTES, 'CQ'], [dataOff, dataBytes, 'data area']] as const) {
      if (!this.inMem(off, bytes) || off % 4 !== 0 || off < NVME_ADMIN_BYTES) return { errno: 'EINVAL', message: `${this.name}: CMB queue ${qid} ${what} [${off}, +${bytes}) is not inside its ${this.mem.length}-byte memory past the controller's working memory` };
    }
    const view = (off: number, bytes: number) => new Int32Array(this.mem.buffer, this.mem.byteOffset + off, bytes / 4);
    view(cqOff, entries * CQE_BYTES).fill(0);
    this.cmb[qid] = {
      qid,
      sq: new SqConsumer(view(sqOff, entries * SQE_BYTES), entries, this.ctx.self.regs, qid),
      cq: new CqProducer(view(cqOff, entries * CQE_BYTES), entries, this.ctx.self.regs, qid),
      dataOff,
      dataBytes,
      msiAddr: cmd.msiAddr,
    };
    return { errno: 0 };
  }
}

export function createNvme(ctx: DeviceContext): DeviceModel {
  return new NvmeController(ctx);
}
