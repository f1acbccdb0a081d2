/**
 * The emulated machine as the kernel sees it: physical memory, the bus
 * decoder, one page allocator per memory, and a DeviceHandle per device
 * worker.
 *
 * Lifetime: Machine.create checks limits, creates the shared memory,
 * spawns (or, given a DeviceWorkerPool, borrows) and configures every
 * worker (in parallel); shutdown stops them all, then terminates them, or
 * with a pool and a clean run resets each and gives it back. A worker of a
 * run that failed anywhere (a device, the workload, a data check: the
 * caller says `recycle: false`) or that does not stop and reset in time is
 * terminated, never kept. The first failure of any device rejects `failure`,
 * which every wait of the kernel races against, so a crashed or hung
 * device ends the run with its name instead of a hang.
 *
 * Every machine of this thread is listed in Machine.live from its first
 * worker to the end of its shutdown: what an interrupt (src/cli/
 * interrupt.ts, SIGINT/SIGTERM) stops with Machine.interrupt, the way the
 * kernel's exit path quiesces a device before the process goes.
 */
import { DeviceError } from '../errors.js';
import { BusDecoder } from '../shm/bus_map.js';
import { PAGE_SIZE } from '../shm/constants.js';
import { DeviceCtl } from '../shm/device_ctl.js';
import { attachMachineShm, createMachineShm, type DeviceShm, type MachineShm } from '../shm/phys_mem.js';
import { PageAllocator } from '../shm/page_alloc.js';
import { DeviceHandle } from './device_handle.js';
import { DeviceWorker } from './device_worker.js';
import type { DeviceWorkerPool } from './worker_pool.js';
import { checkLimits, deviceLimit } from './limits.js';
import { hostCores, resolveRunTokens, RunTokens, type RunTokenSetting } from './run_tokens.js';
import { deviceKinds } from './device_kinds.js';
import { TraceEvent, traceSink } from '../shm/trace_ring.js';

export interface DeviceSpec {
  readonly name: string;
  readonly kind: string;
  readonly memBytes: number;
  readonly barBytes: number;
  readonly props: Readonly<Record<string, unknown>>;
  /** Fault injection: the device acks invalidations but keeps its translations (DeviceCtl.invIgnore). */
  readonly ignoreInvalidations?: boolean;
}

export interface MachineSpec {
  readonly ramBytes: number;
  readonly devices: readonly DeviceSpec[];
  /** Deadline of every wait on a worker. */
  readonly timeoutMs: number;
  /** Records per device trace ring; 0 or absent: the run is not traced (src/shm/trace_ring.ts). */
  readonly traceRecords?: number;
  /** Cooperative run tokens (src/devices/run_tokens.ts); absent: 'auto'. */
  readonly runTokens?: RunTokenSetting;
  /** What the machine runs (a scenario and mode), for an interrupt's message; absent: its device count. */
  readonly label?: string;
}

/** What an interrupt did to one machine (Machine.interrupt). */
export interface InterruptOutcome {
  readonly label: string;
  /** 'booting', 'running' or 'stopping' when the interrupt came. */
  readonly state: string;
  /** Device workers terminated (all of the machine's). */
  readonly devices: number;
  /** Devices asked to stop that answered in time (none are asked unless running). */
  readonly stopped: number;
  /** Devices that did not answer 'stop' within the budget (terminated like the rest). */
  readonly late: readonly string[];
}

/** Boot figures of a machine: the run's machine line (src/trace/summary.ts) and `--json`. */
export interface MachineBoot {
  /** Machine.create: spawn and configure every worker. */
  readonly ms: number;
  /** Host RSS growth over the boot, per device worker (a measure, noisy with other main-thread work). */
  readonly rssPerWorkerBytes: number;
  /** Device workers this host could hold beside this machine's memories (src/devices/limits.ts). */
  readonly deviceLimit: number;
  readonly cores: number;
  /** Run tokens in force; 0: off. */
  readonly runTokens: number;
  /** Workers borrowed warm from a DeviceWorkerPool instead of spawned (their V8 already compiled the device code). */
  readonly reused: number;
}

export interface MachineOptions {
  /** Borrow idle workers from here; shutdown gives them back after a clean run. Absent: every worker is fresh. */
  readonly pool?: DeviceWorkerPool;
}

export interface Device {
  readonly spec: DeviceSpec;
  readonly shm: DeviceShm;
  readonly handle: DeviceHandle;
  /** Allocator of the device's local memory (null without memory). */
  readonly mem: PageAllocator | null;
}

export class Machine {
  readonly bus: BusDecoder;
  readonly ram: PageAllocator;
  /** Machines of this thread from their first worker until their shutdown ends. */
  private static readonly live = new Set<Machine>();
  private readonly byName = new Map<string, Device>();
  private booted = false;
  private firstFailure: DeviceError | null = null;
  /** Rejects with the first device failure; never resolves. */
  readonly failure: Promise<never>;

  private constructor(
    readonly spec: MachineSpec,
    readonly shm: MachineShm,
    readonly devices: readonly Device[],
    /** The run tokens in force; null: off. */
    readonly runTokens: RunTokens | null,
    private readonly pool: DeviceWorkerPool | null,
  ) {
    this.bus = new BusDecoder(shm);
    this.ram = new PageAllocator('system RAM', spec.ramBytes / PAGE_SIZE, shm.ram, shm.ramGen);
    for (const d of devices) this.byName.set(d.spec.name, d);
    this.failure = new Promise<never>((_, reject) => {
      for (const [i, d] of devices.entries()) {
        d.handle.onFailure((e) => {
          runTokens?.reap(i); // a dead device's token goes to the next one
          this.firstFailure ??= e;
          reject(e);
        });
      }
    });
    this.failure.catch(() => undefined); // observed by whoever races it
  }

  /** How the machine came up, for the run's machine line (set once by create). */
  boot: MachineBoot = { ms: 0, rssPerWorkerBytes: 0, deviceLimit: 0, cores: 0, runTokens: 0, reused: 0 };
  private down: Promise<void> | null = null;

  static async create(spec: MachineSpec, opts: MachineOptions = {}): Promise<Machine> {
    checkLimits({ ramBytes: spec.ramBytes, devices: spec.devices });
    // Refused before any thread exists: a refusal after spawning would leave workers holding the process.
    const nTokens = resolveRunTokens(spec.runTokens, spec.devices.length);
    const t0 = performance.now();
    const rss0 = process.memoryUsage.rss();
    const desc = createMachineShm(spec.ramBytes, spec.devices.map((d) => ({ name: d.name, memBytes: d.memBytes, barBytes: d.barBytes, wasm: deviceKinds[d.kind]?.wasmMemory })), spec.traceRecords ?? 0);
    const shm = attachMachineShm(desc);
    const devices: Device[] = [];
    let reused = 0;
    let m: Machine;
    try {
      reused = Machine.attachDevices(spec, shm, opts.pool ?? null, devices);
      for (const d of devices) if (d.spec.ignoreInvalidations) Atomics.store(d.shm.ctl, DeviceCtl.invIgnore, 1);
      m = new Machine(spec, shm, devices, nTokens > 0 ? new RunTokens(nTokens, devices.map((d) => d.shm.ctl)) : null, opts.pool ?? null);
      Machine.live.add(m);
    } catch (e) {
      await Promise.allSettled(devices.map((d) => d.handle.terminate()));
      throw e;
    }
    const tokens = m.runTokens;
    // Half the machine deadline: a device starved of a token fails its transfer naming the
    // holders before the kernel's own wait on that device times out without a reason.
    const runTokens = tokens ? { sab: tokens.sab, timeoutMs: Math.max(1, Math.floor(spec.timeoutMs / 2)) } : undefined;
    try {
      await m.race(Promise.all(devices.map((d, i) => d.handle.call('configure', { name: d.spec.name, index: i, kind: d.spec.kind, shm: desc, props: d.spec.props, runTokens }))));
    } catch (e) {
      await m.shutdown({ recycle: false });
      throw e;
    }
    const memories = spec.ramBytes + spec.devices.reduce((sum, d) => sum + d.memBytes, 0);
    m.boot = {
      ms: performance.now() - t0,
      // The host's RSS delta over spawn + configure, per worker spawned (reused ones grow nothing; SABs excluded: not touched yet).
      rssPerWorkerBytes: devices.length > reused ? Math.max(0, process.memoryUsage.rss() - rss0) / (devices.length - reused) : 0,
      deviceLimit: deviceLimit(memories),
      cores: hostCores(),
      runTokens: nTokens,
      reused,
    };
    m.booted = true;
    return m;
  }

  /** The machines of this thread now (booting, running or shutting down). */
  static liveMachines(): readonly Machine[] {
    return [...Machine.live];
  }

  /**
   * An interrupt: asks every device of a running machine that still
   * answers to stop, waits at most `budgetMs` for all of them (not the
   * machine's own deadline: the user is waiting), then terminates every
   * worker (none goes back to a pool). Names the devices that did not
   * answer 'stop' in time. A machine still booting has started no device
   * and one shutting down has already asked them: both are only terminated.
   */
  async interrupt(budgetMs: number): Promise<InterruptOutcome> {
    const state = this.down ? 'stopping' : this.booted ? 'running' : 'booting';
    const pending = new Set(state === 'running' ? this.devices.filter((d) => !d.handle.failed).map((d) => d.spec.name) : []);
    const asked = pending.size;
    const stops = this.devices.filter((d) => pending.has(d.spec.name)).map((d) => d.handle.call('stop').finally(() => pending.delete(d.spec.name)));
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.allSettled(stops), new Promise((r) => (timer = setTimeout(r, budgetMs)))]);
    clearTimeout(timer);
    const late = [...pending];
    this.down ??= Promise.resolve();
    await Promise.allSettled(this.devices.map((d) => d.handle.terminate()));
    Machine.live.delete(this);
    return { label: this.spec.label ?? `a machine of ${this.devices.length} devices`, state, devices: this.devices.length, stopped: asked - late.length, late };
  }

  /**
   * One handle per device, on a pooled worker or a new one, pushed to
   * `devices` as it is made (so a throw midway leaves the caller every
   * thread already taken or spawned, to terminate). Returns how many were pooled.
   */
  private static attachDevices(spec: MachineSpec, shm: MachineShm, pool: DeviceWorkerPool | null, devices: Device[]): number {
    let reused = 0;
    for (const [i, s] of spec.devices.entries()) {
      const dshm = shm.devices[i];
      const mem = dshm.mem ? new PageAllocator(`${s.name} memory`, s.memBytes / PAGE_SIZE, dshm.mem, dshm.memGen!) : null;
      // The model's own working memory (line buffers, scratch) sits at the
      // start of device memory; no driver may hand those pages out.
      const own = Math.ceil((deviceKinds[s.kind]?.minMemBytes ?? 0) / PAGE_SIZE);
      if (mem && own > 0) mem.allocContig(Math.min(own, mem.totalPages));
      const warm = pool?.take(s.kind, s.name) ?? null;
      if (warm) reused++;
      devices.push({ spec: s, shm: dshm, handle: new DeviceHandle(s.name, dshm.ctl, spec.timeoutMs, warm ?? new DeviceWorker(s.kind, s.name)), mem });
    }
    return reused;
  }

  device(name: string): Device {
    const d = this.byName.get(name);
    if (!d) throw new Error(`machine: no device named '${name}' (devices: ${[...this.byName.keys()].join(', ')})`);
    return d;
  }

  get failed(): DeviceError | null {
    return this.firstFailure;
  }

  /** Resolves with p, or rejects with the first device failure, whichever comes first. */
  race<T>(p: Promise<T>): Promise<T> {
    return Promise.race([p, this.failure]);
  }

  async start(): Promise<void> {
    await this.callAll('start');
  }

  /**
   * One control call to every device at once, each under the machine's
   * deadline. All are timed from the same moment, so when one times out
   * the others still silent time out in the same turn: the error names
   * every device that had not answered (in device order), not only the
   * one whose timer ran first (the first device listed, often a healthy
   * camera starved of a core beside the one that hangs). A crash or
   * another device failure rejects as it comes.
   */
  async callAll(method: 'start' | 'stop' | 'errors'): Promise<void> {
    const calls = this.devices.map((d) => d.handle.call(method));
    try {
      await this.race(Promise.all(calls));
    } catch (e) {
      if (!(e instanceof DeviceError) || e.what !== 'timeout') throw e;
      // Bounded: every call has the same deadline as the one that expired.
      const outcomes = await Promise.allSettled(calls);
      const silent = this.devices.filter((_, i) => {
        const o = outcomes[i];
        return o.status === 'rejected' && o.reason instanceof DeviceError && o.reason.what === 'timeout';
      });
      if (silent.length <= 1) throw silent.length === 1 ? (outcomes[this.devices.indexOf(silent[0])] as PromiseRejectedResult).reason : e;
      const names = silent.map((d) => `${d.spec.name} (heartbeat ${Atomics.load(d.shm.ctl, DeviceCtl.heartbeat)})`);
      throw new DeviceError(silent.map((d) => d.spec.name).join(', '), 'timeout', `no answer to '${method}' within ${this.spec.timeoutMs} ms from ${silent.length} devices: ${names.join(', ')}`);
    }
  }

  /**
   * The host interrupt count, read before looking for completions: passing
   * it to waitHostIrq makes an interrupt raised meanwhile end the wait at once.
   */
  irqSeen(): number {
    return Atomics.load(this.shm.hostIrq, 0);
  }

  /**
   * Waits until the host interrupt line moves past `seen` (some device
   * raised an MSI, or the kernel kicked itself with kickHost), without
   * blocking the event loop. Pairs with DeviceQueues.raise. On timeout the
   * devices that owed completions are failed by name (and terminated at
   * shutdown).
   */
  async waitHostIrq(seen: number, owing: () => { dev: Device; outstanding: number }[]): Promise<number> {
    const irq = this.shm.hostIrq;
    const r = Atomics.waitAsync(irq, 0, seen, this.spec.timeoutMs);
    const outcome = r.async ? await this.race(r.value) : r.value;
    if (outcome === 'timed-out') {
      const late = owing().filter((o) => o.outstanding > 0);
      const errs = late.map((o) => o.dev.handle.fail(new DeviceError(o.dev.spec.name, 'timeout', `${o.outstanding} command(s) not completed within ${this.spec.timeoutMs} ms (heartbeat ${Atomics.load(o.dev.shm.ctl, DeviceCtl.heartbeat)})`)));
      throw errs[0] ?? new DeviceError('(none)', 'timeout', `host waited ${this.spec.timeoutMs} ms with no command outstanding`);
    }
    const n = Atomics.load(irq, 0);
    traceSink.w?.instant(TraceEvent.HostIrq, n);
    return n;
  }

  /** A software interrupt: wakes waitHostIrq (for kernel-side events such as a finished check). */
  kickHost(): void {
    Atomics.add(this.shm.hostIrq, 0, 1);
    Atomics.notify(this.shm.hostIrq, 0);
  }

  /**
   * Stops every device that still answers; then, with a pool and
   * `recycle` (the default; the caller passes false when its run failed),
   * resets each and gives it back if no device of the machine failed;
   * terminates every worker not given back. Idempotent: later calls await
   * the first.
   */
  shutdown(opts: { recycle?: boolean } = {}): Promise<void> {
    this.down ??= this.teardown(opts.recycle !== false);
    return this.down;
  }

  private async teardown(recycle: boolean): Promise<void> {
    await Promise.allSettled(this.devices.filter((d) => !d.handle.failed).map((d) => d.handle.call('stop')));
    const pool = recycle && !this.firstFailure ? this.pool : null;
    // A reset that fails or times out fails its device (and so the machine): then nothing is kept.
    // A reset the worker answers with an error (not a timeout or a crash) fails no device: check each.
    const resets = pool ? await Promise.allSettled(this.devices.map((d) => d.handle.call('reset'))) : [];
    const keep = pool !== null && !this.firstFailure && resets.every((r) => r.status === 'fulfilled');
    await Promise.allSettled(this.devices.map((d) => (keep ? pool.give(d.handle.release()) : d.handle.terminate())));
    // Release any kernel-side waitAsync still parked on a device word, so no
    // timer outlives the machine.
    Atomics.notify(this.shm.hostIrq, 0);
    for (const d of this.devices) Atomics.notify(d.shm.ctl, DeviceCtl.invAck);
    Machine.live.delete(this);
  }
}
