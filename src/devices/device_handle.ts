/**
 * The kernel's handle on one device worker: spawns it, speaks the control
 * plane through comlink, and turns every way a worker can go wrong into a
 * DeviceError that names the device.
 *
 * Lifetime: created by Machine.create, configured once, terminated by
 * Machine.shutdown (or on the first failure of any device). After a
 * failure every further call rejects at once with the same error.
 *
 * Every wait on the worker has a deadline: a call that is not answered in
 * `timeoutMs` fails with DeviceError(timeout) naming the device and call.
 */
import { Worker } from 'node:worker_threads';
import * as Comlink from 'comlink';
import { DeviceError } from '../errors.js';
import { DeviceCtl, ringWake } from '../shm/device_ctl.js';
import { nodeEndpoint } from './comlink_node.js';
import type { DeviceCmd, DeviceEndpointApi, DeviceOp, DeviceReply } from './protocol.js';
import { WORKER_EXEC_ARGV, compiledModule } from './worker_entry.js';

type Method = keyof DeviceEndpointApi;

/** Deadline of the first call, which includes starting the worker thread. */
const BOOT_TIMEOUT_MS = 15000;

export class DeviceHandle {
  private readonly worker: Worker;
  private readonly remote: Comlink.Remote<DeviceEndpointApi>;
  private failure: DeviceError | null = null;
  private terminating = false;
  private readonly failureListeners: ((e: DeviceError) => void)[] = [];

  constructor(
    readonly name: string,
    readonly ctl: Int32Array,
    private readonly timeoutMs: number,
  ) {
    this.worker = new Worker(compiledModule('workers/device_main'), { name: `peervma:${name}`, execArgv: WORKER_EXEC_ARGV });
    this.remote = Comlink.wrap<DeviceEndpointApi>(nodeEndpoint(this.worker));
    this.worker.on('error', (e) => this.fail(new DeviceError(name, 'crashed', e instanceof Error ? e.message : String(e))));
    this.worker.on('exit', (code) => {
      if (!this.terminating) this.fail(new DeviceError(name, 'exited', `worker exited with code ${code}`));
    });
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
      const fn = this.remote[method] as unknown as (...a: unknown[]) => Promise<Awaited<ReturnType<DeviceEndpointApi[M]>>>;
      return fn(...args);
    });
  }

  /** Sends one control call (`send`, not run after a failure: the proxy may be released) and waits for its answer with the deadline of `method`. */
  private async answer<T>(method: Method, send: () => Promise<T>): Promise<T> {
    if (this.failure) throw this.failure;
    Atomics.add(this.ctl, DeviceCtl.ctrlReq, 1);
    const answer = send();
    ringWake(this.ctl);
    const deadline = method === 'configure' ? Math.max(this.timeoutMs, BOOT_TIMEOUT_MS) : this.timeoutMs;
    let timer: NodeJS.Timeout | undefined;
    let unlisten = (): void => undefined;
    try {
      return await Promise.race([
        answer,
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(this.fail(new DeviceError(this.name, 'timeout', `no answer to '${method}' within ${deadline} ms`))), deadline);
          unlisten = this.onFailure(reject);
        }),
      ]);
    } finally {
      clearTimeout(timer);
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
      const deviceCmd = this.remote.deviceCmd as unknown as (c: DeviceCmd<O>) => Promise<DeviceReply<O>>;
      return deviceCmd(cmd);
    });
  }

  /** Records the first failure and tells the listeners; returns the error in force. */
  fail(e: DeviceError): DeviceError {
    if (this.failure || this.terminating) return this.failure ?? e;
    this.failure = e;
    for (const cb of this.failureListeners.splice(0)) cb(e);
    return e;
  }

  async terminate(): Promise<void> {
    this.terminating = true;
    this.remote[Comlink.releaseProxy]();
    await this.worker.terminate();
  }
}
