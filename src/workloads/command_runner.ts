/**
 * Submits commands to host queues and resolves each with its completion,
 * with one reaper for all of them — so a workload can keep commands on
 * several devices in flight (a MONITOR on the NIC while the accelerator
 * COMPUTEs) and simply await each one.
 *
 *   kernel (CommandRunner)                 device workers
 *   ----------------------                 --------------
 *   submit(q, cmd) -> promise              execute, post CQE, raise MSI
 *   reaper: seen = load(hostIrq)
 *           reap every queue, resolve
 *           waitHostIrq(seen)  <---------- Atomics.add/notify(hostIrq)
 *   [Required: the reaper loads hostIrq before reaping, so an MSI raised
 *    while it reaps ends the next wait at once (Machine.waitHostIrq)]
 *
 * A failed completion rejects with a DeviceError carrying the device's own
 * message (its error log) and, with the kernel, the kernel's line when a
 * page request it refused is the reason (completionError). Lifetime: one per workload run; the reaper
 * stops when nothing is pending and restarts on the next submit.
 */
import { DeviceError } from '../errors.js';
import type { Device, Machine } from '../devices/machine.js';
import type { Kernel } from '../kernel/kernel.js';
import type { DeviceCmd, DeviceOk, DeviceOp } from '../devices/protocol.js';
import { completionError, type HostQueue } from '../drivers/host_queue.js';
import { CqStatus, type Completion, type SqCommand } from '../shm/ring.js';

interface Waiter {
  resolve(c: Completion): void;
  reject(e: unknown): void;
}

export class CommandRunner {
  private readonly waiters = new Map<HostQueue, Map<object, Waiter>>();
  /** True while the reaper runs; set before it starts and cleared inside it (no await between its last check and the clear). */
  private reaping = false;
  /** Commands submitted (the kernel's interventions in the data path). */
  submitted = 0;

  /** `kernel`: the bound devices' refused page requests are looked up there (Kernel.refusals). */
  constructor(
    private readonly machine: Machine,
    private readonly kernel: Pick<Kernel, 'refusals'> | null = null,
  ) {}

  /** Submits `cmd` on `q`; resolves with its completion, rejects on a failed status. */
  run(q: HostQueue, cmd: Omit<SqCommand, 'cid'>): Promise<Completion> {
    const tag = {};
    const p = new Promise<Completion>((resolve, reject) => {
      let m = this.waiters.get(q);
      if (!m) this.waiters.set(q, (m = new Map()));
      m.set(tag, { resolve, reject });
    });
    if (!q.submit(cmd, tag)) {
      this.waiters.get(q)!.delete(tag);
      throw new DeviceError(q.dev.spec.name, 'device-error', `submission queue full (${q.entries} entries, ${q.outstanding} outstanding)`);
    }
    this.submitted++;
    if (!this.reaping) {
      this.reaping = true;
      void this.reap();
    }
    return p;
  }

  private pending(): number {
    let n = 0;
    for (const m of this.waiters.values()) n += m.size;
    return n;
  }

  private async reap(): Promise<void> {
    try {
      while (this.pending() > 0) {
        const seen = this.machine.irqSeen();
        for (const [q, m] of this.waiters) {
          for (const { c, tag } of q.reap()) {
            const w = m.get(tag as object);
            if (!w) continue;
            m.delete(tag as object);
            if (c.status === CqStatus.Success) w.resolve(c);
            else w.reject(await completionError(q.dev, c, this.kernel));
          }
        }
        if (this.pending() === 0) break;
        // Every waiter's completion is reaped after this load, or wakes the wait.
        await this.machine.waitHostIrq(seen, () => [...this.waiters].map(([q, m]) => ({ dev: q.dev, outstanding: m.size })));
      }
    } catch (e) {
      for (const m of this.waiters.values()) {
        for (const w of m.values()) w.reject(e);
        m.clear();
      }
    } finally {
      // Cleared in the same synchronous step as the last pending() check:
      // a run() after it starts a new reaper.
      this.reaping = false;
    }
  }
}

/**
 * A device's kind-specific command (src/devices/protocol.ts); a refusal becomes DeviceError naming the
 * device. With the `kernel` (a command that DMAs by VA: va-stream), the kernel's line is added when a page
 * request it refused is the failure's reason (PageRequestRefusals.explain).
 */
export async function deviceQuery<O extends DeviceOp>(machine: Machine, dev: Device, cmd: DeviceCmd<O>, kernel?: Pick<Kernel, 'refusals'>): Promise<DeviceOk<O>> {
  const r = await machine.race(dev.handle.cmd(cmd));
  if (r.errno !== 0) throw new DeviceError(dev.spec.name, 'device-error', kernel ? kernel.refusals(dev.spec.name).explain(r.message) : r.message);
  return r;
}
