/**
 * One device worker thread and its one comlink Remote, for the thread's
 * whole life: a DeviceHandle holds it for one machine, a DeviceWorkerPool
 * (worker_pool.ts) may keep it between machines.
 *
 * The thread's 'error' and 'exit' listeners are installed once, here, and
 * route to whoever holds the worker now (route()): a worker serving its
 * tenth machine has the same listeners as on its first, none left behind
 * by earlier holders.
 *
 * [Required: the Remote is released only by terminate(): comlink's release
 * message closes the worker's exposed endpoint, after which the worker
 * could never be configured again.]
 */
import { Worker } from 'node:worker_threads';
import * as Comlink from 'comlink';
import { nodeEndpoint } from './comlink_node.js';
import type { DeviceEndpointApi } from './protocol.js';
import { WORKER_EXEC_ARGV, compiledModule } from './worker_entry.js';

/** What went wrong with the thread itself (DeviceError's what and detail). */
export interface WorkerTrouble {
  readonly what: 'crashed' | 'exited';
  readonly detail: string;
}

export class DeviceWorker {
  readonly worker: Worker;
  readonly remote: Comlink.Remote<DeviceEndpointApi>;
  private sink: ((t: WorkerTrouble) => void) | null = null;
  private ending: Promise<void> | null = null;
  private gone = false;

  constructor(
    /** Device kind and name it was spawned for: the pool's key (worker_pool.ts). */
    readonly kind: string,
    readonly name: string,
  ) {
    this.worker = new Worker(compiledModule('workers/device_main'), { name: `peervma:${name}`, execArgv: WORKER_EXEC_ARGV });
    this.remote = Comlink.wrap<DeviceEndpointApi>(nodeEndpoint(this.worker));
    this.worker.on('error', (e) => this.sink?.({ what: 'crashed', detail: e instanceof Error ? e.message : String(e) }));
    this.worker.on('exit', (code) => {
      this.gone = true;
      if (!this.ending) this.sink?.({ what: 'exited', detail: `worker exited with code ${code}` });
    });
  }

  /** False once the thread exited or terminate() began: such a worker is never lent again. */
  get alive(): boolean {
    return !this.gone && !this.ending;
  }

  /** Sends the thread's trouble to `sink` from now on (null: nobody listens). */
  route(sink: ((t: WorkerTrouble) => void) | null): void {
    this.sink = sink;
  }

  /** Ends the thread. Idempotent: every call awaits the same end. */
  terminate(): Promise<void> {
    this.ending ??= (async () => {
      this.sink = null;
      this.remote[Comlink.releaseProxy]();
      await this.worker.terminate();
    })();
    return this.ending;
  }
}
