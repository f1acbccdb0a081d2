/**
 * The types the kernel objects share, in one module below all of them, so
 * mm, vma, devmem, migrate, hmm, iommu, p2p_map and kernel name each other
 * through these contracts instead of importing each other's files (no
 * import cycle, type imports included).
 *
 * - DeviceRef: a device as the kernel names it (struct device *).
 * - VmOps / VmArea / P2pMapResult: the RFC's vm_operations_struct for
 *   device-special VMAs (patch 3/5), implemented by the exporters in
 *   src/drivers, and the VMA as those callbacks see it (class Vma).
 * - P2pVerdict / P2pPolicy: pci_p2pdma_map_type()'s answer and the
 *   injected topology policy (src/hw's Fabric, or p2p_map.ts's defaults).
 * - MmRef, DevMemRef, KernelCore: what the lower objects use of the higher
 *   ones (Mm, DevMem, Kernel implement them), as struct dev_pagemap_ops is
 *   what mm/memory.c knows of a device driver.
 *
 * Types only.
 */
import type { Errno } from '../errors.js';
import type { PageRequestOrder } from './page_request_order.js';
import type { Machine } from '../devices/machine.js';
import type { PageAllocator } from '../shm/page_alloc.js';
import type { BarManager } from './bar_manager.js';

/** The importing device, as the kernel names it (struct device *). */
export interface DeviceRef {
  readonly name: string;
  readonly index: number;
}

/** What a VMA, an exporter's revoke and a device-private page's owner use of an Mm (class Mm). */
export interface MmRef {
  readonly name: string;
  /** Invalidates [start, end) for every importer and waits for their acks; `owner` is the caller (its own callback skips it). */
  revokeRange(start: number, end: number, owner: unknown): Promise<void>;
}

/** vm_area_struct as vm_ops see it (class Vma in vma.ts). */
export interface VmArea {
  readonly mm: MmRef;
  readonly start: number;
  readonly end: number;
  readonly prot: number;
  /** Page offset inside the device file (vm_pgoff). */
  readonly pgoff: number;
  /** Exporter data (vm_private_data). */
  readonly priv: unknown;
  readonly readable: boolean;
  readonly writable: boolean;
  toString(): string;
}

/** vm_operations_struct of a device-special VMA. */
export interface VmOps {
  /** Name for messages ("bar-exporter of gpu0"). */
  readonly name: string;
  /** Most pages one p2pMap call can map (the BAR budget); importers fault in windows no larger. */
  readonly maxMapPages?: number;
  /** p2p_map: bus addresses (one per page of [start, end)) or an errno with a reason. */
  p2pMap?(vma: VmArea, importer: DeviceRef, start: number, end: number, write: boolean): Promise<P2pMapResult>;
  /**
   * The list version of p2pMap (not in the RFC, which maps one range per
   * call): only the pages of `runs` (flat [i0, i1) page-index pairs into
   * the window of `npages` pages from `start`) in one call, results indexed
   * by window page. hmmRangeFault uses it for a sparse request (a page
   * request group of holes) when the exporter has it.
   */
  p2pMapRuns?(vma: VmArea, importer: DeviceRef, start: number, npages: number, runs: Int32Array, write: boolean): Promise<P2pMapResult>;
  /** p2p_unmap: the importer dropped its mapping of [start, end). */
  p2pUnmap?(vma: VmArea, importer: DeviceRef, start: number, end: number): void;
  /** CPU access (only for CPU-mappable exports): a view of the bytes of one page, or an errno. */
  cpuPage?(vma: VmArea, addr: number, write: boolean): Uint8Array | Errno;
  /** The VMA is going away (munmap, exit): release what backs it. Called after the unmap invalidation. */
  close?(vma: VmArea): Promise<void>;
}

export type P2pMapResult =
  | { readonly ok: true; readonly bus: ArrayLike<number>; readonly gens: ArrayLike<number>; readonly mem: number; readonly pages: ArrayLike<number> }
  | { readonly ok: false; readonly errno: Errno; readonly reason: string };

/** pci_p2pdma_map_type() answer, as src/hw gives it. */
export interface P2pVerdict {
  readonly map: 'bus-addr' | 'thru-host-bridge' | 'not-supported';
  readonly distance: number;
  readonly reason: string;
}

/**
 * Injected topology policy: can `client` reach `provider`'s memory?
 * Workloads pass src/hw's Fabric verdicts (workloads/kernel_boot.ts,
 * fabricPolicy); a kernel booted without one refuses every pair
 * (p2p_map.ts noFabricPolicy), as pci_p2pdma_distance() refuses what it
 * cannot prove. A policy gives the same answer for a pair while it is
 * installed: the kernel keeps its verdicts (Kernel.p2pAllowed); to change
 * answers, assign a new one to kernel.policy (that clears them).
 */
export type P2pPolicy = (provider: DeviceRef, client: DeviceRef) => P2pVerdict;

/**
 * The owner driver's flush of its own device TLB for a migration it caused. An object with a
 * prototype method, not a closure: a closure per binding is a new call target in every run, and
 * the optimized migration code deoptimized on it ("wrong call target") in each pooled run.
 */
export interface OwnerFlush {
  flushOwn(start: number, end: number): Promise<void>;
}

/**
 * A device's HMM memory as a device-private PTE and the fault paths see it
 * (class DevMem): struct dev_pagemap and its ops.
 */
export interface DevMemRef {
  /** pgmap->owner's device. */
  readonly owner: DeviceRef;
  /** The device's local memory, and its per-page generations. */
  readonly bytes: Uint8Array;
  readonly gen: Int32Array;
  /** The owner's answer to peers (the devmem p2p callback may refuse). */
  readonly allowPeers: boolean;
  /** Set by the owner's driver: flushes its own device TLB during migrations it caused. */
  readonly ownerFlush: OwnerFlush | null;
  /** dev_pagemap_ops.page_free() of many pages (runs of consecutive pages freed at once). */
  freePageList(pages: ArrayLike<number>): void;
  /** dev_pagemap_ops.migrate_to_ram() for the page mapped at `va` of `mm`. Caller holds mm.lock. */
  migrateToRam(mm: MmRef, va: number): Promise<0 | Errno>;
  /** The RFC's devmem p2p callback: the peer address of `page` for `importer`, or null to refuse. */
  p2pMap(page: number, importer: DeviceRef, mm: MmRef, va: number): Promise<{ bus: number; gen: number } | null>;
  /** The same for a run of pages (VA page i of the run at `va` is pages[i]): one BAR mapping, one hold. */
  p2pMapRange(pages: Int32Array, importer: DeviceRef, mm: MmRef, va: number): Promise<{ bus: Float64Array; gens: Int32Array } | null>;
  /** The matching unmap: `importer` dropped its peer translations of [start, end) of `mm`. */
  p2pUnmap(importer: DeviceRef, mm: MmRef, start: number, end: number): void;
}

/** What mm, migrate, hmm and devmem use of the kernel (class Kernel). */
export interface KernelCore {
  readonly machine: Machine;
  /** Kernel log (dmesg): one line per notable event, prefixed by subsystem. */
  readonly log: string[];
  /** System RAM pages. */
  readonly ram: PageAllocator;
  readonly ramBytes: Uint8Array;
  /** The shared zero page. */
  readonly zeroPfn: number;
  /** The device's BAR manager, or null when it has no BAR window. */
  barIfAny(name: string): BarManager | null;
  /** May `client` DMA to `provider`'s memory? With the reason when not. */
  p2pAllowed(provider: DeviceRef, client: DeviceRef): { ok: boolean; reason: string };
  /** Page requests before revokes (page_request_order.ts). */
  readonly pageRequests: PageRequestOrder;
}
