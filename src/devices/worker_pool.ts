/**
 * Idle device workers kept between machines of the same kind of run, so a
 * later machine re-configures a warm thread instead of spawning one whose
 * V8 compiles the device's code again inside the timed window (an
 * emulator cost, not modelled work: the kernel's thread is warm from the
 * earlier runs of the process in the same way).
 *
 * Lifetime: created by whoever runs several machines in a row
 * (compareScenario, bench/scenarios.ts), passed to Machine.create, closed
 * by its creator in a `finally`. Machine.shutdown gives back only workers
 * of a run that ended cleanly, each stopped and reset (workers/
 * device_main.ts reset) within the machine's deadline; everything else is
 * terminated there and never comes here.
 *
 * Invariants: an idle worker is unref()'d, so a pool nobody closed never
 * keeps the process alive; an idle worker whose thread crashes or exits
 * leaves the pool; after close() nothing is kept (give() terminates).
 * Keyed by device kind and name, so a device gets its own thread back.
 */
import { DeviceWorker } from './device_worker.js';

export class DeviceWorkerPool {
  private readonly idleByKey = new Map<string, DeviceWorker[]>();
  private closing: Promise<void> | null = null;

  private static key(kind: string, name: string): string {
    return `${kind}\u0000${name}`;
  }

  /** Idle workers now (all keys). */
  get idle(): number {
    let n = 0;
    for (const ws of this.idleByKey.values()) n += ws.length;
    return n;
  }

  /** An idle worker of this device, ref()'d again and routed to nobody; null when none. */
  take(kind: string, name: string): DeviceWorker | null {
    const ws = this.idleByKey.get(DeviceWorkerPool.key(kind, name));
    let w = ws?.pop() ?? null;
    // A thread that ended while idle (its exit already seen) is not lent: it would fail configure.
    while (w && !w.alive) w = ws!.pop() ?? null;
    if (!w) return null;
    w.route(null);
    w.worker.ref();
    return w;
  }

  /** Keeps a stopped and reset worker for the next machine (terminates it once the pool is closed or the thread is gone). */
  give(w: DeviceWorker): void {
    if (this.closing || !w.alive) {
      void w.terminate();
      return;
    }
    const k = DeviceWorkerPool.key(w.kind, w.name);
    const ws = this.idleByKey.get(k) ?? [];
    this.idleByKey.set(k, ws);
    ws.push(w);
    w.worker.unref();
    w.route(() => this.drop(w));
  }

  /** Terminates every idle worker; later gives terminate at once. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      const all = [...this.idleByKey.values()].flat();
      this.idleByKey.clear();
      await Promise.allSettled(all.map((w) => w.terminate()));
    })();
    return this.closing;
  }

  /** An idle worker crashed or exited: it leaves the pool. */
  private drop(w: DeviceWorker): void {
    const ws = this.idleByKey.get(DeviceWorkerPool.key(w.kind, w.name));
    const i = ws?.indexOf(w) ?? -1;
    if (i >= 0) ws!.splice(i, 1);
    void w.terminate();
  }
}
