/**
 * A device worker's side of the cooperative run tokens (protocol and
 * layout: src/shm/run_token_layout.ts). The DMA engine asks for a token at
 * every chunk boundary (chunk()) and gives it back when the transfer ends
 * (done()), unless a command holds it across its transfers
 * (DmaEngine.holding: VaSpace.io's runs, a NIC SEND's bursts and
 * checksums), which gives it back itself; a holder that has had its
 * quantum yields to the next ticket at a chunk boundary; a transfer of at
 * most RUN_TOKEN_FREE_BYTES takes none.
 *
 * Invariants:
 * - a device serves the invalidations posted while it was parked (queued,
 *   not admitted) after its admission and before its next chunk: the
 *   kernel treats a parked device as acked without waking it, as x86 skips
 *   the TLB-shootdown IPI to a CPU in lazy TLB mode, which checks the
 *   flush generation before it uses its page tables again
 *   (arch/x86/mm/tlb.c);
 * - acks never wait for a token: while it waits, the device serves its
 *   invalidations (InvalidationPort.check) every time its wake word moves
 *   and at least every RUN_TOKEN_CHECK_MS;
 * - a token is held only inside a DMA transfer or a command that never
 *   waits between its chunks (DmaEngine.holding); such a command gives
 *   it back before every page request (VaSpace.runs) and when it ends,
 *   even on an error or a throw (its `finally`); only the invDelayMs fault
 *   injection sleeps while holding, for a bounded time. So holders always
 *   reach a chunk boundary and give it back: no wait-for cycle through
 *   tokens. A wait added inside a hold (a page request, a sleep, a peer's
 *   interrupt) must give the token back first;
 * - a wait has the machine's deadline; past it the transfer fails with a
 *   message naming the devices that hold the tokens.
 */
import { DeviceCtl, ringWake } from '../../src/shm/device_ctl.js';
import type { DeviceShm, MachineShm } from '../../src/shm/phys_mem.js';
import {
  giveBackTicket,
  RUN_TOKEN_CHECK_MS,
  RUN_TOKEN_FREE_BYTES,
  RUN_TOKEN_QUANTUM_MS,
  RunTokenHdr,
  RunTokenSlot,
  RunTokenState,
  runTokenRingWord,
  runTokenSlotWord,
  ticketAdmitted,
} from '../../src/shm/run_token_layout.js';

/** What the token wait needs of the invalidation port (workers/runtime/invalidation.ts). */
export interface InvalidationPoll {
  check(): boolean;
  sleepBound(ms: number): number;
}

export class RunToken {
  private readonly v: Int32Array;
  private readonly dev: number;
  private readonly stateWord: number;
  private held = false;
  private since = 0;
  private readonly wake = (dev: number): void => ringWake(this.shm.devices[dev].ctl);

  constructor(
    sab: SharedArrayBuffer,
    private readonly self: DeviceShm,
    private readonly shm: MachineShm,
    private readonly inv: InvalidationPoll,
    private readonly timeoutMs: number,
  ) {
    this.v = new Int32Array(sab);
    this.dev = self.index;
    this.stateWord = runTokenSlotWord(this.dev, RunTokenSlot.state);
  }

  /**
   * At a chunk boundary of a transfer of `bytes`: null when the device may
   * copy (it holds a token, or the transfer is too small to need one);
   * otherwise the error that ends the transfer.
   */
  chunk(bytes: number): string | null {
    if (this.held) {
      // Nobody waiting (three loads) is asked before the clock: performance.now() cost 0.1-0.3 us here, once per DMA step.
      if (!this.othersWait() || performance.now() - this.since < RUN_TOKEN_QUANTUM_MS) return null;
      this.done(); // quantum used and someone waits: to the back of the queue
    }
    if (bytes <= RUN_TOKEN_FREE_BYTES) return null; // a doorbell, a ring entry: copied long before any hand-off
    return this.acquire();
  }

  /** The transfer ended (or yields): gives the token back and wakes the next ticket. */
  done(): void {
    if (!this.held) return;
    this.held = false;
    giveBackTicket(this.v, this.dev, this.wake);
  }

  private othersWait(): boolean {
    const v = this.v;
    return ((Atomics.load(v, RunTokenHdr.next) - Atomics.load(v, RunTokenHdr.released) - v[RunTokenHdr.tokens]) | 0) > 0;
  }

  private acquire(): string | null {
    const v = this.v;
    const t = Atomics.add(v, RunTokenHdr.next, 1);
    Atomics.store(v, runTokenSlotWord(this.dev, RunTokenSlot.ticket), t);
    Atomics.store(v, this.stateWord, RunTokenState.Queued);
    // Before the admitted test: pairs with the ring load in giveBackTicket.
    Atomics.store(v, runTokenRingWord(v[RunTokenHdr.devices], t), this.dev + 1);
    if (!ticketAdmitted(v, t)) {
      const why = this.wait(t);
      if (why !== null) return why;
    }
    // Admitted: serve what was posted while we were parked before the next
    // chunk. The kernel does not wait for (nor wake) a parked device's ack
    // (RunTokens.parked): this check, after the load of `released` that
    // admitted us, is what makes that safe.
    this.inv.check();
    this.held = true;
    this.since = performance.now();
    return null;
  }

  /** Sleeps until ticket `t` is admitted, serving invalidations meanwhile. */
  private wait(t: number): string | null {
    const v = this.v;
    const ctl = this.self.ctl;
    Atomics.add(v, RunTokenHdr.waits, 1);
    const t0 = performance.now();
    for (;;) {
      // Loaded before the tests: pairs with ringWake (invalidation, doorbell, token hand-off).
      const seen = Atomics.load(ctl, DeviceCtl.wake);
      if (Atomics.load(v, this.stateWord) !== RunTokenState.Queued) return `${this.self.name}: its run-token ticket was taken back by the kernel (the device was failed)`;
      if (ticketAdmitted(v, t)) return null;
      this.inv.check();
      const waited = performance.now() - t0;
      if (waited >= this.timeoutMs) {
        const holders = this.holders();
        giveBackTicket(v, this.dev, this.wake);
        return `${this.self.name}: DMA waited ${Math.round(waited)} ms for a run token (deadline ${this.timeoutMs} ms); held by ${holders.join(', ') || 'nobody (lost wake?)'}`;
      }
      Atomics.wait(ctl, DeviceCtl.wake, seen, this.inv.sleepBound(Math.min(RUN_TOKEN_CHECK_MS, this.timeoutMs - waited)));
    }
  }

  /** Names of the devices whose tickets are admitted now. */
  private holders(): string[] {
    const v = this.v;
    const out: string[] = [];
    for (let d = 0; d < v[RunTokenHdr.devices]; d++) {
      if (d === this.dev || Atomics.load(v, runTokenSlotWord(d, RunTokenSlot.state)) !== RunTokenState.Queued) continue;
      if (ticketAdmitted(v, Atomics.load(v, runTokenSlotWord(d, RunTokenSlot.ticket)))) out.push(this.shm.devices[d].name);
    }
    return out;
  }
}

/** What the DMA engine calls (workers/runtime/dma_engine.ts): chunk(transfer bytes) before every chunk, done() when the transfer (or a command holding it) ends. */
export type RunTokenHook = Pick<RunToken, 'chunk' | 'done'>;
