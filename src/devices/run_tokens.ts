/**
 * The kernel's side of the cooperative run tokens (protocol and layout:
 * src/shm/run_token_layout.ts; device side: workers/runtime/run_token.ts):
 * the machine setting, the shared block, and the reaping of a dead
 * device's ticket so a crashed worker never wedges the others.
 *
 * Setting (scenario `machine: runTokens`, `peervma run --run-tokens`):
 *   'auto'  on, with one token per core, when devices outnumber the cores;
 *           off otherwise (the OS then never has to time-slice devices);
 *   'off'   (or 0) never;
 *   n       n tokens, whatever the device count.
 */
import os from 'node:os';
import { ringWake } from '../shm/device_ctl.js';
import { allocRunTokens, giveBackTicket, RunTokenHdr, RunTokenSlot, RunTokenState, runTokenSlotWord, ticketAdmitted } from '../shm/run_token_layout.js';

export type RunTokenSetting = 'auto' | 'off' | number;

/** Host cores the device workers share. */
export function hostCores(): number {
  return typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
}

/** Tokens for `devices` workers under `setting`; 0 means off. */
export function resolveRunTokens(setting: RunTokenSetting | undefined, devices: number, cores = hostCores()): number {
  const s = setting ?? 'auto';
  if (s === 'off') return 0;
  if (s === 'auto') return devices > cores ? cores : 0;
  if (!(Number.isInteger(s) && s >= 0)) throw new RangeError(`run tokens: expected 'auto', 'off' or a whole number >= 0, got ${String(s)}`);
  return s;
}

/** Parses a --run-tokens / `runTokens:` value. */
export function parseRunTokens(v: string): RunTokenSetting | null {
  if (v === 'auto' || v === 'off') return v;
  return /^\d+$/.test(v) ? Number(v) : null;
}

export class RunTokens {
  readonly sab: SharedArrayBuffer;
  private readonly v: Int32Array;

  constructor(
    readonly tokens: number,
    private readonly ctls: readonly Int32Array[],
  ) {
    this.sab = allocRunTokens(ctls.length, tokens);
    this.v = new Int32Array(this.sab);
  }

  /**
   * Gives back the ticket of device `index` (dead, or failed by a deadline
   * and left running): its token, or its place in the queue, goes to the
   * next device. The CAS in giveBackTicket makes this and the device's own
   * release exclusive. Returns whether there was a ticket.
   */
  reap(index: number): boolean {
    return giveBackTicket(this.v, index, (d) => ringWake(this.ctls[d]));
  }

  /**
   * Is device `index` parked: queued for a token and not admitted, so
   * asleep before its next DMA chunk rather than inside one? Called by the
   * kernel right after it posted an invalidation (src/kernel/
   * invalidate_broadcast.ts): the device serves every posted invalidation
   * once admitted, before its next chunk (workers/runtime/run_token.ts
   * acquire). The loads come after the post's store of invSeq; the device
   * loads `released` before it loads invSeq: if it was admitted by a
   * release this load does not see, it sees the post.
   */
  parked(index: number): boolean {
    const v = this.v;
    if (Atomics.load(v, runTokenSlotWord(index, RunTokenSlot.state)) !== RunTokenState.Queued) return false;
    return !ticketAdmitted(v, Atomics.load(v, runTokenSlotWord(index, RunTokenSlot.ticket)));
  }

  /** Hand-offs that woke a waiting device, and acquires that slept. */
  get stats(): { handoffs: number; waits: number } {
    return { handoffs: Atomics.load(this.v, RunTokenHdr.handoffs), waits: Atomics.load(this.v, RunTokenHdr.waits) };
  }
}
