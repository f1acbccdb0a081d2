/**
 * The kernel object: what every kernel-side piece shares on one machine —
 * the RAM allocator and zero page, device memories (DevMem), BAR managers,
 * IOMMU domains, per-device invalidators, the P2P policy and a log.
 *
 * Lifetime: Kernel.boot(machine, opts) after Machine.create; the kernel
 * does not own the machine (the caller shuts it down). Main thread only.
 *
 * P2P decision for a pair (provider, client), used by DevMem.p2pMap and
 * exporters (pci_p2pdma_distance + the IOMMU rule of DESIGN.md section 5).
 * The policy is the fabric's verdict (workloads/kernel_boot.ts passes it);
 * booted without one, the kernel refuses every pair (noFabricPolicy):
 *   policy says 'not-supported'           -> refuse, with the policy's reason
 *   'thru-host-bridge' and IOMMU off      -> allowed (rfc-v1 would refuse;
 *                                            the policy function decides that)
 *   otherwise                              -> allowed
 */
import { PAGE_SIZE } from '../shm/constants.js';
import type { Device, Machine } from '../devices/machine.js';
import { PeerVmaError } from '../errors.js';
import { BarManager } from './bar_manager.js';
import { DevMem } from './devmem.js';
import { DeviceInvalidator, type InvRange } from './invalidate_broadcast.js';
import { IommuDomain } from './iommu.js';
import { Mm } from './mm.js';
import type { DeviceRef, KernelCore, P2pPolicy, P2pVerdict } from './kernel_types.js';
import { migrateToRamLocked } from './migrate.js';
import { noFabricPolicy } from './p2p_map.js';
import { PageRequestOrder } from './page_request_order.js';
import { PageRequestRefusals } from './page_request_refusals.js';
import type { PageAllocator } from '../shm/page_alloc.js';

export interface KernelOptions {
  /** Fabric verdicts (src/hw via workloads/kernel_boot.ts). Without one, every P2P pair is refused (noFabricPolicy). */
  readonly policy?: P2pPolicy;
  /** IOMMU on for every device (true) or for the named ones. */
  readonly iommu?: boolean | readonly string[];
  /** Safety-check mode: device TLB entries are compared with the live generation on every DMA chunk. */
  readonly check?: boolean;
  /** Deadline of an invalidation ack. */
  readonly ackTimeoutMs?: number;
}

/**
 * A breach of the safety invariant the kernel itself saw (the device-side
 * checker's are in each importer's SafetyLog): an invalidation that ended
 * without the ack of a device the IOMMU cannot stop.
 */
export interface KernelViolation {
  readonly kind: 'ack-timeout';
  readonly device: string;
  /** The invalidation batch (DeviceCtl.invSeq) that was not acked. */
  readonly seq: number;
  readonly ms: number;
  readonly ranges: readonly InvRange[];
}

/** Per-device invalidation counters (DeviceInvalidator.stats), for verdicts and reports. */
export interface InvalidatorCounters {
  readonly device: string;
  readonly sent: number;
  readonly acked: number;
  readonly timedOut: number;
  readonly ranges: number;
  /** Behind an IOMMU domain that was fenced after a timeout. */
  readonly fenced: boolean;
  readonly ackUs: readonly number[];
}

export class Kernel implements KernelCore {
  readonly ram: PageAllocator;
  readonly ramBytes: Uint8Array;
  readonly zeroPfn: number;
  private policyFn: P2pPolicy;
  /**
   * The policy's verdict per (provider, client) pair, as p2pdma keeps
   * map_types per client in an xarray (pci_p2pdma_map_type): asked once
   * per pair, not once per mapped run. Cleared when the policy changes.
   */
  private readonly verdicts = new Map<number, P2pVerdict>();
  readonly check: boolean;
  readonly ackTimeoutMs: number;
  /** Kernel log (dmesg): one line per notable event, prefixed by subsystem. */
  readonly log: string[] = [];
  /** Safety violations seen by the kernel (ack timeouts with the IOMMU off). */
  readonly violations: KernelViolation[] = [];
  /** Importer bindings' safety logs (ImporterBinding registers itself), read by the run's safety check. */
  readonly safetySources: { readonly name: string; violations(): { count: number; records: readonly { kind: string }[] } }[] = [];
  /** Importers' page-request mailboxes, served before revokes (page_request_order.ts). */
  readonly pageRequests = new PageRequestOrder();
  private readonly devmems = new Map<string, DevMem>();
  private readonly bars = new Map<string, BarManager>();
  private readonly invs = new Map<string, DeviceInvalidator>();
  private readonly domains = new Map<string, IommuDomain>();
  private readonly refusalLogs = new Map<string, PageRequestRefusals>();

  private constructor(
    readonly machine: Machine,
    private readonly opts: KernelOptions,
  ) {
    this.ram = machine.ram;
    this.ramBytes = machine.shm.ram;
    this.policyFn = opts.policy ?? noFabricPolicy;
    this.check = opts.check ?? false;
    this.ackTimeoutMs = opts.ackTimeoutMs ?? 1000;
    // The shared zero page: allocated once, never written, never freed.
    this.zeroPfn = this.ram.allocContig(1).start;
    this.ramBytes.fill(0, this.zeroPfn * PAGE_SIZE, (this.zeroPfn + 1) * PAGE_SIZE);
  }

  static boot(machine: Machine, opts: KernelOptions = {}): Kernel {
    return new Kernel(machine, opts);
  }

  createMm(): Mm {
    return new Mm(this);
  }

  ref(name: string): DeviceRef {
    const d = this.machine.device(name);
    return { name, index: d.shm.index };
  }

  iommuEnabledFor(name: string): boolean {
    const o = this.opts.iommu;
    return o === true || (Array.isArray(o) && o.includes(name));
  }

  /**
   * dma_map_single() / dma_map_resource(): the address device `dev` must
   * put on the bus to reach [bus, bus + len) — a buffer in RAM, or a peer's
   * doorbell or MSI register. With the IOMMU on, the pages are mapped at
   * consecutive IOVAs of the device's domain and the IOVA is returned;
   * with it off, the bus address itself.
   */
  dmaMap(dev: string, bus: number, len: number, write: boolean): number {
    const dom = this.domain(dev);
    return dom ? dom.mapRange(bus, len, write) : bus;
  }

  /** The device's IOMMU domain (one device per group here), or null with the IOMMU off. */
  domain(name: string): IommuDomain | null {
    if (!this.iommuEnabledFor(name)) return null;
    let d = this.domains.get(name);
    if (!d) {
      d = new IommuDomain(`iommu domain of ${name}`, [this.ref(name)], () => [this.invalidator(name)]);
      this.domains.set(name, d);
    }
    return d;
  }

  invalidator(name: string): DeviceInvalidator {
    let inv = this.invs.get(name);
    if (!inv) {
      const d = this.machine.device(name);
      const tokens = this.machine.runTokens;
      inv = new DeviceInvalidator(name, d.shm.ctl, this.ackTimeoutMs, (dev, seq, ms, ranges) => this.ackTimedOut(dev, seq, ms, ranges), (cb) => d.handle.onFailure(cb), tokens ? () => tokens.parked(d.shm.index) : undefined);
      this.invs.set(name, inv);
    }
    return inv;
  }

  /** HMM device memory of a device: the pages of its allocator (the model's own working memory at the start was taken at Machine.create). */
  devmem(name: string): DevMem {
    let m = this.devmems.get(name);
    if (!m) {
      const d: Device = this.machine.device(name);
      if (!d.mem) throw new PeerVmaError('ENODEV', name, 'has no local memory to use as device-private memory');
      m = new DevMem(this, d, d.mem, migrateToRamLocked);
      this.devmems.set(name, m);
    }
    return m;
  }

  /** The kernel's log of device `name`'s refused page requests (its binding writes it; its driver reads a failure's reason). */
  refusals(name: string): PageRequestRefusals {
    let r = this.refusalLogs.get(name);
    if (!r) this.refusalLogs.set(name, (r = new PageRequestRefusals()));
    return r;
  }

  bar(name: string): BarManager {
    let b = this.bars.get(name);
    if (!b) {
      b = new BarManager(this.machine.device(name));
      this.bars.set(name, b);
    }
    return b;
  }

  /** Every BAR manager made so far (statistics: p2p maps, unmaps, recycled slots). */
  barManagers(): BarManager[] {
    return [...this.bars.values()];
  }

  barIfAny(name: string): BarManager | null {
    const d = this.machine.device(name);
    return d.shm.barSlots && d.shm.memGen ? this.bar(name) : null;
  }

  /** pci_p2pdma_distance() in policy form; switchable (tests swap it, a topology change would). */
  get policy(): P2pPolicy {
    return this.policyFn;
  }

  set policy(p: P2pPolicy) {
    this.policyFn = p;
    this.verdicts.clear();
  }

  /** May `client` DMA to `provider`'s memory? With the reason when not. */
  p2pAllowed(provider: DeviceRef, client: DeviceRef): { ok: boolean; reason: string } {
    const key = provider.index * this.machine.devices.length + client.index; // indexes are Device.shm.index, < devices.length
    let v = this.verdicts.get(key);
    // Through .call: the policy is a closure made per run, and a direct call
    // inlined into hmm's hot paths speculated on the last run's closure
    // (one 'wrong call target' deopt per process, recompiled inside the next
    // p2p window); .call's target is not speculated on.
    if (v === undefined) this.verdicts.set(key, (v = this.policyFn.call(undefined, provider, client)));
    if (v.map === 'not-supported') return { ok: false, reason: `p2pdma: ${client.name} cannot reach ${provider.name}: ${v.reason}` };
    return { ok: true, reason: v.reason };
  }

  /** Counters of every device invalidated so far. */
  invalidatorCounters(): InvalidatorCounters[] {
    return [...this.invs.values()].map((inv) => ({ device: inv.name, ...inv.stats, fenced: this.domains.get(inv.name)?.fenced ?? false }));
  }

  /**
   * An invalidation ended without `dev`'s ack. With the IOMMU on the device
   * is fenced off its domain (contained: every later DMA faults). With it
   * off nothing can stop it reaching the pages the caller frees next: that
   * is a safety violation, recorded for the run's verdict, not a log line.
   */
  private ackTimedOut(dev: string, seq: number, ms: number, ranges: readonly InvRange[]): void {
    const dom = this.domains.get(dev);
    if (dom) {
      dom.fence();
      this.log.push(`mmu_notifier: ${dev} did not ack invalidation ${seq} within ${ms} ms; iommu: ${dev} fenced off its domain`);
    } else {
      this.violations.push({ kind: 'ack-timeout', device: dev, seq, ms, ranges: ranges.map((r) => ({ start: r.start, end: r.end })) });
      this.log.push(`mmu_notifier: ${dev} did not ack invalidation ${seq} within ${ms} ms; IOMMU off: it cannot be stopped (safety violation: ack-timeout)`);
    }
  }
}
