/**
 * A device working on its own device-private pages where they are (the
 * reason memory is migrated to a device: HMM's dev_private_owner rule,
 * RFC patch 4/5), instead of copying them through a staging area first.
 *
 * ownLocalRange() answers, for process VA [va, +len): the byte offset in
 * the device's own memory where those bytes are, when every page of the
 * range is one of its own private pages, present in its TLB (writable
 * when asked), contiguous in local memory, and made from the page's live
 * generation; else -1, and the caller takes its ordinary path
 * (VaSpace.read / write), which faults, copies, and lets the safety
 * checker record a stale entry.
 *
 * Safety: the device acks invalidations only inside InvalidationPort.check
 * (this thread). Between this test and the end of the caller's work on the
 * bytes the caller must not call check(), so no page of the range can be
 * taken back (migrated to RAM, freed) while it is used:
 *
 *   off = ownLocalRange(...)        entries present, generations live
 *   work on mem[off, off + len)     no check(): no ack, the pages stay ours
 *   ctx.inv.check()                 now an invalidation may be acked
 *   [Required: no access to the range after an ack of it]
 */
import { PAGE_SIZE } from '../../src/shm/constants.js';
import { HMM_PFN_DEVICE_PRIVATE } from '../../src/shm/hmm_pfn.js';
import type { DeviceTlb } from './device_tlb.js';

/** Local byte offset of VA [va, +len) when it is all our own usable private pages, contiguous, generations live; else -1. */
export function ownLocalRange(tlb: DeviceTlb, self: { readonly index: number; readonly memGen: Int32Array | null }, va: number, len: number, write: boolean): number {
  const gen = self.memGen;
  if (!gen || len <= 0) return -1;
  const vpn = Math.floor(va / PAGE_SIZE);
  const inPage = va - vpn * PAGE_SIZE;
  const pages = Math.ceil((inPage + len) / PAGE_SIZE);
  if (!tlb.usable(vpn, write) || (tlb.flags(vpn) & HMM_PFN_DEVICE_PRIVATE) === 0) return -1;
  // Same kind, usable, consecutive local addresses (runPages), then each entry against its page's live generation.
  if (tlb.runPages(vpn, pages, write) < pages) return -1;
  const base = tlb.devAddr(vpn);
  if (tlb.verifyRun(vpn, pages, self.index, base / PAGE_SIZE, gen) >= 0) return -1;
  return base + inPage;
}
