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
 * them relative to a Baseline taken after the warm-up: nothing of the
 * warm-up reaches it. The run-wide figures runScenario adds beside it do
 * include the warm-up, as they include every workload's setup:
 * RunReport.ackUs (every ack of the run, the HTML report's histogram) and
 * RunReport.p2pSlots (every BAR map and unmap of the run).
 */
import { PAGE_SIZE } from '../../shm/constants.js';
import { PROT_READ, PROT_WRITE, type Mm } from '../../kernel/mm.js';
import type { Device, Machine } from '../../devices/machine.js';
import type { Kernel } from '../../kernel/kernel.js';
import { p99, stageTimes, vaCounters, type VaCounters } from '../accounting.js';
import type { InvalidationStats, StageTimes } from '../workload.js';

/** Pages of the warm-up buffer: a few staging chunks per device, well under any BAR budget. */
export const WARM_PAGES = 64;

/** The counters after the warm-up. */
export interface Baseline {
  readonly stages: ReadonlyMap<string, StageTimes>;
  readonly va: ReadonlyMap<string, VaCounters>;
  readonly inv: ReadonlyMap<string, { sent: number; acked: number; acks: number }>;
  readonly submitted: number;
}

/** Snapshot of every counter the run's accounting reads, for `devs` (importers and the accelerator). */
export async function baseline(machine: Machine, kernel: Kernel, devs: readonly Device[], submitted: number): Promise<Baseline> {
  const stages = new Map<string, StageTimes>();
  const va = new Map<string, VaCounters>();
  const inv = new Map<string, { sent: number; acked: number; acks: number }>();
  for (const d of devs) {
    const name = d.spec.name;
    stages.set(name, stageTimes(d));
    va.set(name, await vaCounters(machine, d));
    const st = kernel.invalidator(name).stats;
    inv.set(name, { sent: st.sent, acked: st.acked, acks: st.ackUs.length });
  }
  return { stages, va, inv, submitted };
}

/** `now` minus `old`, field by field over the numeric fields but those in `keep` (taken from `now`: levels, not counts). */
function minus<T extends object>(now: T, old: T, keep: readonly (keyof T)[] = []): T {
  const out = { ...now };
  for (const k of Object.keys(now) as (keyof T)[]) {
    const v = now[k];
    if (typeof v === 'number' && !keep.includes(k)) (out[k] as number) = v - (old[k] as number);
  }
  return out;
}

/** stageTimes(d) since the baseline. */
export function stageSince(d: Device, b: Baseline): StageTimes {
  const now = stageTimes(d);
  const o = b.stages.get(d.spec.name);
  return o ? minus(now, o) : now;
}

/** vaCounters(d) since the baseline (`tlb`, the entries held now, is a level). */
export async function vaSince(machine: Machine, d: Device, b: Baseline): Promise<VaCounters> {
  const now = await vaCounters(machine, d);
  const o = b.va.get(d.spec.name);
  return o ? minus(now, o, ['tlb']) : now;
}

/** invalidationStats(kernel, devices) since the baseline: batches and the ack latencies of the batches after it. */
export function invalidationSince(kernel: Kernel, devices: readonly string[], b: Baseline): InvalidationStats {
  let sent = 0;
  let acked = 0;
  const ackUs: number[] = [];
  for (const d of devices) {
    const st = kernel.invalidator(d).stats;
    const o = b.inv.get(d) ?? { sent: 0, acked: 0, acks: 0 };
    sent += st.sent - o.sent;
    acked += st.acked - o.acked;
    ackUs.push(...st.ackUs.slice(o.acks));
  }
  return { sent, acked, maxAckUs: ackUs.reduce((m, x) => Math.max(m, x), 0), p99AckUs: p99(ackUs), ackWaitMs: ackUs.reduce((t, x) => t + x, 0) / 1000 };
}

/** The warm-up buffer: WARM_PAGES pages of the process, written by the CPU. Unmap it with the returned function. */
export async function warmBuffer(mm: Mm): Promise<{ va: number; unmap: () => Promise<void> }> {
  const len = WARM_PAGES * PAGE_SIZE;
  const va = await mm.mmap({ length: len, prot: PROT_READ | PROT_WRITE });
  await mm.write(va, new Uint8Array(len).fill(0x5a));
  return { va, unmap: () => mm.munmap(va, len) };
}
