/**
 * The device loop: what a device worker does between control calls.
 *
 * A worker sleeps in one Atomics.wait on its wake word; doorbells,
 * invalidations and control calls all bump that word (ringWake in
 * src/shm/device_ctl.ts). Control calls arrive through comlink on the
 * worker's event loop, which a blocking wait would starve, so:
 *
 *   main (DeviceHandle.call)              worker (DeviceLoop.run)
 *   ------------------------              -----------------------
 *   Atomics.add(ctl, ctrlReq, 1)          seen = Atomics.load(ctl, wake)
 *   postMessage(call)                     if ctrlReq != ctrlServed:
 *   ringWake(ctl)                             await the call being served,
 *                                             then one macrotask so comlink
 *                                             posts its reply
 *                                         else poll invalidations, work;
 *                                             Atomics.wait(wake, seen)
 *   [Required: every call is served while the loop runs]
 *
 * Invariants: only the worker writes state, ctrlServed, heartbeat, invAck;
 * invalidations are looked at before any new work is started and between
 * DMA chunks (InvalidationPort.check).
 */
import { setImmediate as nextMacrotask } from 'node:timers/promises';
import { DeviceCtl, DeviceState } from '../../src/shm/device_ctl.js';

/** Upper bound on one sleep, so a lost wake costs latency, not a hang. */
const IDLE_WAIT_MS = 50;

export class DeviceLoop {
  private stopRequested = false;
  private ctrlWaiter: (() => void) | null = null;
  private finished: Promise<void> | null = null;

  constructor(
    private readonly ctl: Int32Array,
    /** Does one round of device work; true when it made progress. */
    private readonly work: () => boolean,
    /** Serves pending invalidations; called at the top of every pass. */
    private readonly checkInvalidations: () => void,
  ) {}

  /** Called by the control wrapper once a control call has been served. */
  controlServed(): void {
    Atomics.add(this.ctl, DeviceCtl.ctrlServed, 1);
    const w = this.ctrlWaiter;
    this.ctrlWaiter = null;
    w?.();
  }

  start(): void {
    if (this.finished) throw new Error('device loop: already started');
    Atomics.store(this.ctl, DeviceCtl.state, DeviceState.Running);
    // Started from a macrotask so the start() control call can return first.
    this.finished = nextMacrotask().then(() => this.run());
  }

  stop(): void {
    this.stopRequested = true;
  }

  /** True once stop() was called (the loop then ends at its next pass, or never started). */
  get stopping(): boolean {
    return this.stopRequested;
  }

  /**
   * Resolves when run() has returned (at once if the loop never started);
   * rejects with what ended it if device work threw. Pairs with stop(): a
   * worker is reset (workers/device_main.ts) only after this.
   */
  ended(): Promise<void> {
    return this.finished ?? Promise.resolve();
  }

  private controlPending(): boolean {
    return Atomics.load(this.ctl, DeviceCtl.ctrlReq) !== Atomics.load(this.ctl, DeviceCtl.ctrlServed);
  }

  private async run(): Promise<void> {
    while (!this.stopRequested) {
      // Loaded before looking for work: pairs with ringWake in device_ctl.ts.
      const seen = Atomics.load(this.ctl, DeviceCtl.wake);
      Atomics.add(this.ctl, DeviceCtl.heartbeat, 1);
      if (this.controlPending()) {
        await new Promise<void>((resolve) => (this.ctrlWaiter = resolve));
        await nextMacrotask();
        continue;
      }
      this.checkInvalidations();
      if (this.work()) continue;
      Atomics.wait(this.ctl, DeviceCtl.wake, seen, IDLE_WAIT_MS);
    }
    Atomics.store(this.ctl, DeviceCtl.state, DeviceState.Stopped);
  }
}
