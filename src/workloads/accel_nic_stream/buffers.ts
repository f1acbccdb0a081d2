/**
 * accel-nic-stream's result buffers, by mode: p2p, exported VMAs of the
 * accelerator's memory (BarExporter, read-only, NIC only; their device
 * pages move on revoke, so local() asks pageOf each time); bounce,
 * private device buffers plus RAM staging buffers of the process.
 */
import { BarExporter } from '../../drivers/bar_exporter.js';
import { PROT_READ, PROT_WRITE } from '../../kernel/mm.js';
import type { Vma } from '../../kernel/vma.js';
import { PAGE_SIZE } from '../../shm/constants.js';
import type { AccelNicRig } from '../accel_nic_rig.js';
import type { AccelNicStreamWorkload } from './schema.js';

/** The result buffers: exported VMAs (p2p; their device pages move on revoke, so ask pageOf each time), or private device buffers plus RAM staging buffers of the process (bounce). */
export interface Buffers {
  readonly ex: BarExporter | null;
  readonly exported: readonly { va: number; vma: Vma; bytes: number }[];
  /** Byte offset of buffer b in the accelerator's memory, now. */
  local(b: number): number;
  /** The VA the NIC SENDs buffer b from. */
  sendVa(b: number): number;
  /** Bounce only: the RAM staging buffer of b. */
  readonly staging: readonly number[];
  /** Unmaps the buffers (p2p: the exported VMAs, their pages and BAR slots; bounce: the device buffers and the staging buffers). */
  free(): Promise<void>;
}

export async function allocBuffers(w: AccelNicStreamWorkload, rig: AccelNicRig, bounce: boolean): Promise<Buffers> {
  const pages = w.resultBytes / PAGE_SIZE;
  const ex = bounce ? null : new BarExporter(rig.kernel, w.accelerator, { importers: [w.nic], readOnly: true, requireIommu: false, cpuMappable: false });
  const exported: { va: number; vma: Vma; bytes: number }[] = [];
  const local: number[] = [];
  const staging: number[] = [];
  for (let b = 0; b < w.buffers; b++) {
    if (ex) exported.push({ ...(await ex.mmap(rig.mm, pages)), bytes: w.resultBytes });
    else {
      local.push(rig.acc.mem!.allocContig(pages).start * PAGE_SIZE);
      staging.push(await rig.mm.mmap({ length: w.resultBytes, prot: PROT_READ | PROT_WRITE }));
    }
  }
  return {
    ex,
    exported,
    staging,
    local: (b) => (ex ? ex.pageOf(exported[b].vma, 0) * PAGE_SIZE : local[b]),
    sendVa: (b) => (ex ? exported[b].va : staging[b]),
    async free() {
      for (const e of exported) await rig.mm.munmap(e.va, e.bytes);
      for (const x of local) rig.acc.mem!.freeExtent({ start: x / PAGE_SIZE, count: pages });
      for (const va of staging) await rig.mm.munmap(va, w.resultBytes);
    },
  };
}
