/**
 * Kernel half of the `nvme` device kind (workers/nvme.ts): formats the
 * namespace into device memory, creates host queues, and exports a CMB
 * queue pair to a peer through a device-special VMA — the driver side of
 * RFC workload (1), "a NIC drives an NVMe queue, no CPU".
 *
 * The CMB queue is one VMA of the NVMe's memory (BarExporter, "the exporter
 * decides"), laid out as
 *
 *   VMA page 0 ........ SQ   (entries * 64 bytes, page-rounded)
 *   then .............. CQ   (entries * 16 bytes, page-rounded)
 *   then .............. data (dataBytes, page-rounded)
 *
 * with the export policy the caller gives (workload (1): importers = the
 * NIC only, not CPU-mappable). The importer reaches all three by process
 * VA; the doorbells are in BAR0, by bus address (bar0Base(index)).
 *
 * Lifetime: probe() formats (the namespace is allocated from the device's
 * memory, freed by remove()); createCmbQueue() mmaps the VMA and
 * tells the controller; the VMA must outlive the queue — the driver never
 * revokes it (a revoke moves the pages under the controller's rings), and
 * munmap happens at teardown after the importer stopped.
 */
import { PeerVmaError } from '../errors.js';
import { PAGE_SIZE } from '../shm/constants.js';
import { bar0Base } from '../shm/phys_mem.js';
import { queuePairBytes } from '../shm/ring.js';
import type { Device } from '../devices/machine.js';
import type { DeviceCmd, DeviceOk, DeviceOp } from '../devices/protocol.js';
import { deviceCmdOk } from './device_cmd.js';
import { NVME_CMB_QID, NVME_HOST_QID, type NvmeCounters } from '../devices/nvme_abi.js';
import type { Kernel } from '../kernel/kernel.js';
import type { Mm } from '../kernel/mm.js';
import type { Extent } from '../shm/page_alloc.js';
import type { Vma } from '../kernel/vma.js';
import { BarExporter, type ExportPolicy } from './bar_exporter.js';
import { HostQueue } from './host_queue.js';

/** Where a peer finds a CMB queue: VAs in the process, doorbells on the bus. */
export interface CmbQueueInfo {
  readonly qid: number;
  readonly entries: number;
  /** Start of the VMA = the SQ; the CQ and data area at these byte offsets from it. */
  readonly va: number;
  readonly cqOffset: number;
  readonly dataOffset: number;
  readonly dataBytes: number;
  readonly npages: number;
  /** Bus address of the NVMe's BAR0 (its doorbells: DeviceRegs.sqTail/cqHead + qid, 32-bit words). */
  readonly doorbellBase: number;
  readonly vma: Vma;
}

const pagesFor = (bytes: number) => Math.ceil(bytes / PAGE_SIZE);

export class NvmeDriver {
  private readonly extents: Extent[] = [];
  private exporter: BarExporter | null = null;

  private constructor(
    readonly kernel: Kernel,
    readonly dev: Device,
    readonly blocks: number,
    readonly blockBytes: number,
  ) {}

  /** Pages of controller memory a namespace of `blocks` blocks takes. */
  static namespacePages(blocks: number, blockBytes: number): number {
    return pagesFor(blocks * blockBytes);
  }

  /** Pages a CMB queue pair of `entries` entries and a `dataBytes` data area takes (memory and BAR slots). */
  static cmbPages(entries: number, dataBytes: number): number {
    const { sq, cq } = queuePairBytes(entries);
    return pagesFor(sq) + pagesFor(cq) + pagesFor(dataBytes);
  }

  /** Formats a namespace of `blocks` blocks (zeroed) in the controller's memory. */
  static async probe(kernel: Kernel, devName: string, blocks: number): Promise<NvmeDriver> {
    const dev = kernel.machine.device(devName);
    if (!dev.mem) throw new PeerVmaError('ENODEV', devName, 'an nvme needs local memory for its namespace');
    const blockBytes = (dev.spec.props.blockBytes as number | undefined) ?? 4096;
    const d = new NvmeDriver(kernel, dev, blocks, blockBytes);
    const need = NvmeDriver.namespacePages(blocks, blockBytes);
    if (dev.mem.freePages < need) throw new PeerVmaError('ENOSPC', devName, `a namespace of ${blocks} blocks of ${blockBytes} bytes needs ${need} pages of its memory; ${dev.mem.freePages} free (scenario devices[].memory)`);
    const ns = dev.mem.allocContig(need);
    d.extents.push(ns);
    await d.cmd({ op: 'nvme-format', blockOff: ns.start * PAGE_SIZE, blocks });
    return d;
  }

  get name(): string {
    return this.dev.spec.name;
  }

  /** A host queue pair (rings in system RAM): the kernel submits, as without P2P. */
  hostQueue(entries: number): Promise<HostQueue> {
    return HostQueue.create(this.kernel.machine, this.dev, NVME_HOST_QID, entries);
  }

  /**
   * Exports a CMB queue pair into `mm` under `policy`; completions raise an
   * MSI by a DMA write to `msiAddr` (a peer's BAR0 register; 0 = none).
   */
  async createCmbQueue(mm: Mm, o: { entries: number; dataBytes: number; policy: ExportPolicy; msiAddr: number }): Promise<CmbQueueInfo> {
    if (this.exporter) throw new PeerVmaError('EBUSY', this.name, 'already has a CMB queue');
    const { sq, cq } = queuePairBytes(o.entries);
    const sqPages = pagesFor(sq);
    const cqPages = pagesFor(cq);
    const npages = NvmeDriver.cmbPages(o.entries, o.dataBytes);
    const ex = new BarExporter(this.kernel, this.name, o.policy);
    if (npages > ex.maxMapPages) throw new PeerVmaError('ENOSPC', this.name, `a CMB queue of ${npages} pages does not fit its BAR window of ${ex.maxMapPages} pages (scenario devices[].bar)`);
    const { va, vma } = await ex.mmap(mm, npages);
    const first = ex.pageOf(vma, 0);
    for (let i = 1; i < npages; i++) if (ex.pageOf(vma, i) !== first + i) throw new PeerVmaError('EINVAL', vma.toString(), 'CMB pages are not contiguous');
    const base = first * PAGE_SIZE;
    await this.cmd({ op: 'nvme-create-cmb-queue', qid: NVME_CMB_QID, entries: o.entries, sqOff: base, cqOff: base + sqPages * PAGE_SIZE, dataOff: base + (sqPages + cqPages) * PAGE_SIZE, dataBytes: o.dataBytes, msiAddr: o.msiAddr });
    this.exporter = ex;
    return { qid: NVME_CMB_QID, entries: o.entries, va, cqOffset: sqPages * PAGE_SIZE, dataOffset: (sqPages + cqPages) * PAGE_SIZE, dataBytes: o.dataBytes, npages, doorbellBase: bar0Base(this.dev.shm.index), vma };
  }

  /** The exporter of the CMB queue VMA (statistics: map calls, refusals). */
  get cmbExporter(): BarExporter | null {
    return this.exporter;
  }

  async counters(): Promise<NvmeCounters> {
    return this.cmd({ op: 'nvme-counters' });
  }

  /** Frees the namespace (the device must be stopped or idle). */
  remove(): void {
    for (const e of this.extents.splice(0).reverse()) this.dev.mem!.freeExtent(e);
  }

  private cmd<O extends DeviceOp>(c: DeviceCmd<O>): Promise<DeviceOk<O>> {
    return deviceCmdOk(this.kernel.machine, this.dev, this.name, c);
  }
}
