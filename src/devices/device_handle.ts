/**
 * The kernel's handle on one device worker for one machine: speaks the
 * control plane through the worker's comlink Remote, and turns every way
 * a worker can go wrong into a DeviceError that names the device.
 *
 * Lifetime: created by Machine.create on a worker freshly spawned or
 * taken from a DeviceWorkerPool (worker_pool.ts), configured once; ended
 * by Machine.shutdown, which either terminates the worker or (a clean run
 * with a pool) releases it, stopped and reset, back to the pool. After a
 * failure every further call rejects at once with the same error; after
 * release every call rejects (the worker may already serve another machine).
 *
 * Every wait on the worker has a deadline: a call that is not answered in
 * `timeoutMs` fails with DeviceError(timeout) naming the device and call.
 */
import { DeviceError } from '../errors.js';
import { DeviceCtl, ringWake } from '../shm/device_ctl.js';
import type { DeviceWorker } from './device_worker.js';
import type { DeviceCmd, DeviceEndpointApi, DeviceOp, DeviceReply } from './protocol.js';

type Method = keyof DeviceEndpointApi;

/** Deadline of the first call, which includes starting the worker thread. */
const BOOT_TIMEOUT_MS = 15000;

export class DeviceHandle {
  private failure: DeviceError | null = null;
  /** Set once this handle terminated or released its worker: no failure is recorded after. */
  private ended = false;
  private readonly failureListeners: ((e: DeviceError) => void)[] = [];

  constructor(
    readonly name: string,
    readonly ctl: Int32Array,
    private readonly timeoutMs: number,
    /** The thread, for this machine only; its trouble is routed here until release or terminate. */
    readonly thread: DeviceWorker,
  ) {
    thread.route((t) => this.fail(new DeviceError(name, t.what, t.detail)));
  }

  get failed(): DeviceError | null {
    return this.failure;
  }

  /** Registers a callback for the first failure of this device; returns its removal. */
  onFailure(cb: (e: DeviceError) => void): () => void {
    if (this.failure) {
      cb(this.failure);
      return () => undefined;
    }
    this.failureListeners.push(cb);
    return () => {
      const i = this.failureListeners.indexOf(cb);
      if (i >= 0) this.failureListeners.splice(i, 1);
    };
  }

  /**
   * A control call with a deadline. Pairs with DeviceLoop's
   * ctrlReq/ctrlServed protocol. The first call also waits for the worker
   * to boot, which on a loaded 2-core machine takes far longer than a
   * device answer, so it gets BOOT_TIMEOUT_MS at least.
   */
  async call<M extends Method>(method: M, ...args: Parameters<DeviceEndpointApi[M]>): Promise<Awaited<ReturnType<DeviceEndpointApi[M]>>> {
    return this.answer(method, () => {
      const fn = this.thread.remote[method] as unknown as (...a: unknown[]) => Promise<Awaited<ReturnType<DeviceEndpointApi[M]>>>;
      return fn(...args);
    });
  }

  /** Sends one control call (`send`, not run after a failure: the proxy may be released) and waits for its answer with the deadline of `method`. */
  private async answer<T>(method: Method, send: () => Promise<T>): Promise<T> {
    if (this.failure) throw this.failure;
    if (this.ended) throw new DeviceError(this.name, 'exited', `'${method}' after the machine let its worker go`);
    Atomics.add(this.ctl, DeviceCtl.ctrlReq, 1);
    const answer = send();
    ringWake(this.ctl);
    const deadline = method === 'configure' ? Math.max(this.timeoutMs, BOOT_TIMEOUT_MS) : this.timeoutMs;
    let timer: NodeJS.Timeout | undefined;
    let judged: NodeJS.Immediate | undefined;
    let unlisten = (): void => undefined;
    try {
      return await Promise.race([
        answer,
        new Promise<never>((_, reject) => {
          // Judged one turn later (setImmediate runs after the poll phase): when the kernel's
          // thread itself was late, the expired timers run before the messages that came in
          // meanwhile are read, and the device whose timer is first (the first one listed) would
          // be blamed for an answer already waiting. A real timeout costs one turn more.
          timer = setTimeout(() => (judged = setImmediate(() => reject(this.fail(new DeviceError(this.name, 'timeout', `no answer to '${method}' within ${deadline} ms`))))), deadline);
          unlisten = this.onFailure(reject);
        }),
      ]);
    } finally {
      clearTimeout(timer);
      clearImmediate(judged);
      unlisten();
    }
  }

  /**
   * A kind-specific command (src/devices/protocol.ts), its reply typed by
   * the op. comlink's Remote type drops the op's correlation (a structured
   * clone crosses the wire), so the remote deviceCmd is restated here with
   * it: the worker answers through the handler of cmd.op (serveCmd in
   * workers/runtime/device_model.ts), which the compiler checked against
   * the same row of the table.
   */
  cmd<O extends DeviceOp>(cmd: DeviceCmd<O>): Promise<DeviceReply<O>> {
    return this.answer('deviceCmd', () => {
      const deviceCmd = this.thread.remote.deviceCmd as unknown as (c: DeviceCmd<O>) => Promise<DeviceReply<O>>;
      return deviceCmd(cmd);
    });
  }

  /** Records the first failure and tells the listeners; returns the error in force. */
  fail(e: DeviceError): DeviceError {
    if (this.failure || this.ended) return this.failure ?? e;
    this.failure = e;
    for (const cb of this.failureListeners.splice(0)) cb(e);
    return e;
  }

  async terminate(): Promise<void> {
    this.ended = true;
    await this.thread.terminate();
  }

  /**
   * Ends this handle without ending the thread, for a DeviceWorkerPool:
   * only after 'stop' and 'reset' were answered (Machine.shutdown).
   */
  release(): DeviceWorker {
    this.ended = true;
    this.thread.route(null);
    return this.thread;
  }
}
