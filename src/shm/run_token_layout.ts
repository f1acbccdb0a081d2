/**
 * Cooperative run tokens: when streaming devices outnumber the host's
 * cores, only `tokens` (about one per core) device workers copy at once;
 * the others sleep in Atomics.wait instead of being time-sliced by the OS
 * (3-12 ms slices set every latency otherwise). Like a ticket semaphore
 * (the kernel's qspinlock queue, generalised to K holders): FIFO, so no
 * device starves.
 *
 *   device worker (acquire)               device worker (release)
 *   -----------------------               -----------------------
 *   t = Atomics.add(hdr.next, 1)          CAS(slot.state, Queued, Idle)
 *   slot.ticket = t; slot.state = Queued  r = Atomics.add(hdr.released, 1) + 1
 *   ring[t % ringLen] = dev + 1           a = r + tokens - 1  (ticket admitted now)
 *   loop: seen = load(ctl.wake)           if a was issued: ringWake(ring[a % ringLen])
 *         admitted: t - released < tokens
 *         else serve invalidations;
 *              Atomics.wait(wake, seen)
 *   [Required: at most `tokens` tickets are admitted and not released;
 *    tickets are admitted in issue order]
 *
 * A waiter stores its ring entry *before* it loads `released`, and the
 * releaser adds to `released` *before* it loads the ring: either the
 * releaser sees the entry and wakes the waiter, or the waiter sees the
 * release itself (all Atomics are sequentially consistent). A stale ring
 * entry only causes a spurious wake.
 *
 * A ticket is given back once, by whoever wins the CAS on slot.state: the
 * worker itself, or the kernel when the worker died or was failed
 * (Machine reaps it), or the worker when it gives up after the machine
 * timeout. Giving back a ticket that was never admitted pre-pays it: one
 * later ticket runs early, and the dead ticket's turn uses up that token
 * when it comes; no token is lost or created.
 *
 * Counters are int32 and wrap; comparisons are on `(a - b) | 0`.
 */
import { defineLayout } from './layout.js';

/**
 * A holder gives its token up at the first chunk boundary after holding it
 * this long, when another device waits: the cooperative time slice (the
 * OS's is 3-12 ms). A hand-off costs one futex wake (~20-50 µs).
 */
export const RUN_TOKEN_QUANTUM_MS = 2;
/**
 * A device waiting for a token sleeps at most this long between two looks
 * at its invalidation word. Invalidations and doorbells bump the same wake
 * word the wait sleeps on, so they end the wait at once; the interval only
 * bounds a lost wake.
 */
export const RUN_TOKEN_CHECK_MS = 5;
/**
 * A transfer of at most this many bytes takes no token: a doorbell (4 B),
 * a ring entry (64 B), a page copies in about a microsecond, far below any
 * time slice, while a ticket queues it behind the other devices' copies
 * and costs a futex hand-off (20-50 µs idle, milliseconds on a loaded
 * host). camera-farm: the camera's ring entry and doorbell after each
 * frame waited 1-6 ms each for a token, on the pipeline's critical path.
 */
export const RUN_TOKEN_FREE_BYTES = 4096;

export const RunTokenHdr = defineLayout({
  tokens: { writer: 'main', doc: 'K: tickets admitted at once (written once at creation)' },
  next: { writer: 'worker', doc: 'next ticket to issue; Atomics.add by a device that wants to copy' },
  released: { writer: 'both', doc: 'tickets given back (by their device, or reaped by the kernel); ticket t is admitted while t - released < tokens' },
  devices: { writer: 'main', doc: 'number of device slots that follow' },
  handoffs: { writer: 'worker', doc: 'releases that woke a waiting device (statistics)' },
  waits: { writer: 'worker', doc: 'acquires that had to sleep (statistics)' },
});

/** One per device, after the header. */
export const RunTokenSlot = defineLayout({
  state: { writer: 'both', doc: 'RunTokenState; Queued/Holding -> Idle by one CAS (device release or kernel reap)' },
  ticket: { writer: 'worker', doc: 'the ticket the device holds or waits for, valid while state != Idle' },
});

export const enum RunTokenState {
  Idle = 0,
  /** Has a ticket; admitted or not is decided by the header counters. */
  Queued = 1,
}

/** Ring of ticket -> device + 1 (0: none), 2 entries per device: a device has at most one live ticket, plus one abandoned. */
export function runTokenRingLen(devices: number): number {
  return 2 * devices;
}

export function runTokenSlotWord(dev: number, field: number): number {
  return RunTokenHdr.kFieldCount + dev * RunTokenSlot.kFieldCount + field;
}

export function runTokenRingWord(devices: number, ticket: number): number {
  const len = runTokenRingLen(devices);
  return RunTokenHdr.kFieldCount + devices * RunTokenSlot.kFieldCount + (((ticket % len) + len) % len);
}

export function allocRunTokens(devices: number, tokens: number): SharedArrayBuffer {
  if (!(tokens >= 1 && Number.isInteger(tokens))) throw new RangeError(`run tokens: need a whole number >= 1, got ${tokens}`);
  const words = RunTokenHdr.kFieldCount + devices * RunTokenSlot.kFieldCount + runTokenRingLen(devices);
  const sab = new SharedArrayBuffer(words * 4);
  const v = new Int32Array(sab);
  v[RunTokenHdr.tokens] = tokens;
  v[RunTokenHdr.devices] = devices;
  return sab;
}

/** Is `ticket` admitted (given the header's counters)? */
export function ticketAdmitted(v: Int32Array, ticket: number): boolean {
  return ((ticket - Atomics.load(v, RunTokenHdr.released)) | 0) < v[RunTokenHdr.tokens];
}

/**
 * Gives back `dev`'s ticket if it still has one (the CAS decides who does
 * it: the device, or the kernel reaping a dead one), and wakes the device
 * whose ticket that admits. `wake(dev)` bumps that device's wake word.
 * Returns whether this call gave the ticket back.
 */
export function giveBackTicket(v: Int32Array, dev: number, wake: (dev: number) => void): boolean {
  if (Atomics.compareExchange(v, runTokenSlotWord(dev, RunTokenSlot.state), RunTokenState.Queued, RunTokenState.Idle) !== RunTokenState.Queued) return false;
  const r = (Atomics.add(v, RunTokenHdr.released, 1) + 1) | 0;
  const admitted = (r + v[RunTokenHdr.tokens] - 1) | 0;
  // Issued yet? (next is one past the last issued ticket.)
  if (((admitted - Atomics.load(v, RunTokenHdr.next)) | 0) < 0) {
    const who = Atomics.load(v, runTokenRingWord(v[RunTokenHdr.devices], admitted)) - 1;
    if (who >= 0) {
      Atomics.add(v, RunTokenHdr.handoffs, 1);
      wake(who);
    }
  }
  return true;
}
