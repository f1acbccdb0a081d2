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

export type Pte =
  /**
   * exclusive: set while a device holds the page exclusively
   * (make_device_exclusive, the device-exclusive entry): the owner passed
   * to it. A CPU (or another device's) fault restores the PTE first.
   */
  | { readonly kind: 'ram'; readonly pfn: number; write: boolean; exclusive?: unknown }
  | { readonly kind: 'zero' }
  | { readonly kind: 'devprivate'; readonly devmem: DevMemRef; readonly page: number; write: boolean };
