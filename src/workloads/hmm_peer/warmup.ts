/**
 * hmm-peer's warm-up: before the timed window, each mode runs its own
 * path once on a small buffer of its own (p2p: migrate, TRANSFORM in
 * place, SEND at peer addresses; bounce: TRANSFORM through RAM, SEND from
 * RAM), then unmaps it. Device workers are fresh threads in every run, so
 * without it the window pays V8 compiling each device's code on first use
 * (the first 64 KiB chunk of a stream cost 2-8 ms against 0.05 ms warm),
 * and p2p has more code of its own to compile (local transform, peer
 * decode, BAR mapping) than bounce. Both modes get the same warm-up; the
 * bench's warm-up pair does the same for the kernel thread.
 *
 * The device counters are cumulative, so the workload's Accounting (the
 * window's commands, bytes, faults, invalidations, ack latencies) reads
 * them relative to a Baseline (../counter_baseline.ts) taken after the warm-up: nothing of the
 * warm-up reaches it. The run-wide figures runScenario adds beside it do
 * include the warm-up, as they include every workload's setup:
 * RunReport.ackUs (every ack of the run, the HTML report's histogram) and
 * RunReport.p2pSlots (every BAR map and unmap of the run).
 */
import { PAGE_SIZE } from '../../shm/constants.js';
import { PROT_READ, PROT_WRITE, type Mm } from '../../kernel/mm.js';

/** Pages of the warm-up buffer: a few staging chunks per device, well under any BAR budget. */
export const WARM_PAGES = 64;

/** The warm-up buffer: WARM_PAGES pages of the process, written by the CPU. Unmap it with the returned function. */
export async function warmBuffer(mm: Mm): Promise<{ va: number; unmap: () => Promise<void> }> {
  const len = WARM_PAGES * PAGE_SIZE;
  const va = await mm.mmap({ length: len, prot: PROT_READ | PROT_WRITE });
  await mm.write(va, new Uint8Array(len).fill(0x5a));
  return { va, unmap: () => mm.munmap(va, len) };
}
