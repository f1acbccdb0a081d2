/**
 * Virtual memory areas and CPU page-table entries of an emulated process.
 *
 * Mirrors struct vm_area_struct (vm_start, vm_end, vm_flags, vm_ops,
 * vm_pgoff, vm_private_data) and the three kinds of PTE the RFC cares
 * about: a present system-RAM page, the shared zero page, and a
 * device-private swap entry (a page migrated to a device, patch 4/5).
 *
 * Invariants:
 * - VMAs of one Mm are sorted and never overlap; [start, end) page aligned;
 * - a device-special VMA never has PTEs (its memory is reached through
 *   vm_ops: p2pMap for devices, cpuPage for the CPU when the exporter lets it);
 * - a 'zero' PTE is never writable; a 'ram' PTE owns its pfn (no fork, so
 *   no sharing: freeing the PTE frees the page).
 */
import type { DevMemRef, MmRef, VmArea, VmOps } from './kernel_types.js';

export const PROT_NONE = 0;
export const PROT_READ = 1;
export const PROT_WRITE = 2;

export type VmaKind = 'anon-private' | 'anon-shared' | 'device';

export class Vma implements VmArea {
  constructor(
    readonly mm: MmRef,
    /** guarded by: mm.lock (mmap_lock). */
    public start: number,
    public end: number,
    public prot: number,
    readonly kind: VmaKind,
    /** Device-special VMAs only. */
    readonly vmOps: VmOps | null,
    /** Page offset inside the device file (vm_pgoff). */
    public pgoff: number,
    /** Exporter data (vm_private_data). */
    readonly priv: unknown,
  ) {}

  get readable(): boolean {
    return (this.prot & PROT_READ) !== 0;
  }

  get writable(): boolean {
    return (this.prot & PROT_WRITE) !== 0;
  }

  get isAnon(): boolean {
    return this.kind !== 'device';
  }

  contains(addr: number): boolean {
    return addr >= this.start && addr < this.end;
  }

  toString(): string {
    return `vma[0x${this.start.toString(16)},+${(this.end - this.start) / 1024}K ${this.kind}${this.vmOps ? ' ' + this.vmOps.name : ''}] of ${this.mm.name}`;
  }
}

/**
 * A CPU PTE. Every kind has every field (the ones it does not use: pfn and
 * page -1, devmem null, exclusive undefined), so all PTEs share one V8
 * hidden class: hmm's and the migration's per-page reads of `kind` stay
 * monomorphic instead of deoptimizing ('wrong map') when a kind or an
 * `exclusive` added later first shows up. Build them with ramPte, zeroPte
 * and privatePte only.
 */
export type Pte =
  /**
   * exclusive: set while a device holds the page exclusively
   * (make_device_exclusive, the device-exclusive entry): the owner passed
   * to it. A CPU (or another device's) fault restores the PTE first.
   */
  | { readonly kind: 'ram'; readonly pfn: number; readonly page: -1; readonly devmem: null; write: boolean; exclusive: unknown }
  | { readonly kind: 'zero'; readonly pfn: -1; readonly page: -1; readonly devmem: null; readonly write: false; readonly exclusive: undefined }
  | { readonly kind: 'devprivate'; readonly pfn: -1; readonly page: number; readonly devmem: DevMemRef; write: boolean; readonly exclusive: undefined };

/** A present system-RAM page. */
export function ramPte(pfn: number, write: boolean): Pte {
  return { kind: 'ram', pfn, page: -1, devmem: null, write, exclusive: undefined };
}

/** The shared zero page (never writable). */
export function zeroPte(): Pte {
  return { kind: 'zero', pfn: -1, page: -1, devmem: null, write: false, exclusive: undefined };
}

/** A device-private swap entry: page `page` of `devmem` (RFC patch 4/5). */
export function privatePte(devmem: DevMemRef, page: number, write: boolean): Pte {
  return { kind: 'devprivate', pfn: -1, page, devmem, write, exclusive: undefined };
}
