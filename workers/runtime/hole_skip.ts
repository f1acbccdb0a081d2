/**
 * Copy past a hole, come back for it: a read command that meets pages it
 * cannot use (a revoke punched them among pages it holds) asks for them
 * (DeviceTlb.prefetch, one page request group) and goes on copying the
 * usable pages after them; the holes are copied at the end of the
 * command, by then usually answered. As a DMA engine with ATS/PRI keeps
 * its other transactions going while one waits for a page request
 * response (PCIe PRI: a stalled request does not stall the function's
 * other translated requests), rather than sitting idle for the kernel's
 * service latency (under a revoke storm, one revoke batch and the
 * service: ~0.4 ms a fault, every ~0.5 ms of streaming).
 *
 *   VaSpace.runs (first pass)                   kernel
 *   -------------------------                   ------
 *   page vpn unusable, usable pages after it
 *     in the command: post a request for the
 *     window's missing pages (or one already
 *     in flight holds vpn) ----------------->   serves it meanwhile
 *   note the hole [vpn, +n); copy on
 *   ...
 *   second pass: each hole as before
 *     (VaSpace.faultAt -> DeviceTlb.fault
 *     collects the reply, or waits for it)
 *   [Required: a hole's bytes are copied only through translations
 *    installed by DeviceTlb.fault (its retry test); nothing here installs]
 *
 * Reads only: every byte still lands at its own local offset, and no write
 * reaches memory out of the order a device-written buffer is consumed in
 * (an exporter's drop-behind recycles the slots just behind a write
 * stream's request). At most one request per command is posted here, so a
 * stream keeps its groups for its own faults and fault-ahead (posting one
 * for every uncovered hole while a group is free measured no better).
 *
 * Measured (bench --only dma under the measure lock, 2 free cores, alternated
 * with main): dma.p2p.storm 0.51-0.55 against 0.39. It gains only while the
 * device has a core of its own: with one core for main and device (another
 * process busy on the other) both modes measured ~0.36-0.43, the bound
 * being main's and the device's shares of that core (DESIGN.md,
 * "dma.p2p.storm").
 *
 * Threading: the device worker only.
 */
import { PAGE_SIZE } from '../../src/shm/constants.js';
import { SPARSE_SPAN } from '../../src/shm/tlb_layout.js';
import type { DeviceTlb } from './device_tlb.js';

/** Holes of one command: byte offsets into the command and lengths, in order. Reused across commands. */
export class Holes {
  readonly off: number[] = [];
  readonly len: number[] = [];
  /** A request was posted for this command's holes (at most one). */
  posted = false;

  reset(): void {
    this.off.length = 0;
    this.len.length = 0;
    this.posted = false;
  }

  get count(): number {
    return this.off.length;
  }

  /** Records [off, +len), merged with the last hole when they touch. */
  add(off: number, len: number): void {
    const n = this.off.length;
    if (n > 0 && this.off[n - 1] + this.len[n - 1] === off) this.len[n - 1] += len;
    else {
      this.off.push(off);
      this.len.push(len);
    }
  }
}

/**
 * Pages to skip at `vpn` (unusable) of a read command ending before page
 * `cmdEnd`, or 0 when the hole must be faulted now: it runs to the end of
 * the command (nothing to copy meanwhile), or no request holding `vpn` is
 * in flight and none could be posted. `last`: the page the stream ends
 * before (a request's window stops there, as a fault's does). `span(vpn,
 * cap)` is the window a fault at vpn would ask for (VaSpace.missingSpan).
 */
export function skipHole(tlb: DeviceTlb, holes: Holes, vpn: number, cmdEnd: number, last: number, span: (vpn: number, cap: number) => number): number {
  let n = 1;
  while (vpn + n < cmdEnd && !tlb.usable(vpn + n, false)) n++;
  if (vpn + n >= cmdEnd) return 0;
  const va = vpn * PAGE_SIZE;
  if (tlb.awaiting(va)) return n;
  // The command's one request: spent only once posted (no free group, or a request already holding the window: try at the next hole).
  if (holes.posted || !tlb.prefetch(va, span(vpn, Math.min(last - vpn, SPARSE_SPAN)), false, true)) return 0;
  holes.posted = true;
  return tlb.awaiting(va) ? n : 0;
}
