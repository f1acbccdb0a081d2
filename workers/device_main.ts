/**
 * Entry point of every device worker: becomes the device named in its
 * configure call and exposes the control plane (DeviceEndpointApi) through
 * comlink. Everything after start() is data plane: SAB + Atomics.
 *
 * Lifetime: configure once, createQueue any number of times, start once,
 * stop once; then the main thread either terminates the worker or resets
 * it (a DeviceWorkerPool keeps it for the next machine, src/devices/
 * worker_pool.ts), and the next configure starts from nothing again.
 * [Required: after reset nothing the next machine's run uses reaches the
 * last machine: the endpoint's fields and thread_machine.ts's `live` holder
 * are cleared; the endpoint keeps at most one retired machine (its shared
 * memory, model, queues, binding, IOMMU walker), never reachable through
 * `live`, only so V8's optimized code keeps its maps, until the next machine
 * starts or binds (an idle pooled worker so holds one machine's memory);
 * module-level state is reuse-safe (simd_kernels.ts `instance`/`tablesOf`,
 * accel_simd.ts `compiled` hold compiled code and a table owner that is
 * checked by identity, not machine state). The retired machine's release
 * at bind-mm runs a full collection inside that control call: binds stay
 * before the timed windows.]
 */
import { parentPort } from 'node:worker_threads';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import * as Comlink from 'comlink';
import { nodeEndpoint } from '../src/devices/comlink_node.js';
import type { CmdHandlers, DeviceCmd, DeviceConfig, DeviceEndpointApi, DeviceErrorRecord, DeviceReply, QueueConfig, RuntimeOps } from '../src/devices/protocol.js';
import { BusDecoder } from '../src/shm/bus_map.js';
import { attachMachineShm } from '../src/shm/phys_mem.js';
import { DeviceLoop } from './runtime/device_loop.js';
import { DeviceQueues } from './runtime/device_queues.js';
import { DmaEngine } from './runtime/dma_engine.js';
import { InvalidationPort } from './runtime/invalidation.js';
import { RunToken } from './runtime/run_token.js';
import { serveCmd, type DeviceModel } from './runtime/device_model.js';
import { deviceFactories } from './registry.js';
import type { DeviceCtxCore } from './runtime/device_ctx.js';
import { attachIommu, VaSpace } from './runtime/va_space.js';
import { vaStream } from './runtime/va_stream.js';
import type { IommuWalk } from './runtime/iommu_walk.js';
import { traceSink, TraceWriter } from '../src/shm/trace_ring.js';
import { forgetMachine, liveCalls, RetiredMachine, serveMachine } from './runtime/thread_machine.js';

interface Realised {
  readonly model: DeviceModel;
  readonly queues: DeviceQueues;
  readonly loop: DeviceLoop;
}

class DeviceEndpoint implements DeviceEndpointApi {
  private dev: Realised | null = null;
  private core: DeviceCtxCore | null = null;
  /** The process this device is bound to; set by 'bind-mm'. */
  private va: VaSpace | null = null;
  /** The device's IOMMU walker; set by 'iommu-attach' (or a bind that carries a domain). */
  private iommu: IommuWalk | null = null;
  private readonly log: DeviceErrorRecord[] = [];
  /** The machine before this one, until this one has built the same kinds of objects. */
  private readonly retired = new RetiredMachine(collectGarbage);

  configure(cfg: DeviceConfig): void {
    if (this.dev) throw new Error(`${cfg.name}: configure called twice`);
    const factory = deviceFactories[cfg.kind];
    if (!factory) throw new Error(`${cfg.name}: no device model for kind '${cfg.kind}'`);
    const shm = attachMachineShm(cfg.shm);
    const self = shm.devices[cfg.index];
    const ring = cfg.shm.devices[cfg.index].trace;
    traceSink.w = ring ? new TraceWriter(ring) : null;
    const bus = new BusDecoder(shm);
    const inv = new InvalidationPort(self.ctl, self.stats);
    // The calls hot code makes into this machine go through liveCalls (long-lived functions re-pointed
    // here), not closures of this machine: optimized code inlines its call targets (./runtime/thread_machine.ts).
    const dma = new DmaEngine(self, shm, bus, liveCalls.invCheck, liveCalls.invPending);
    if (cfg.runTokens) dma.runToken = new RunToken(cfg.runTokens.sab, self, shm, inv, cfg.runTokens.timeoutMs);
    const logError = (message: string): number => {
      this.log.push({ seq: this.log.length, message });
      return this.log.length - 1;
    };
    const core = { self, shm, bus, dma, inv, props: cfg.props, logError };
    const va = (): VaSpace => {
      if (!this.va) throw new Error(`${cfg.name}: not bound to a process (ImporterBinding.bind)`);
      return this.va;
    };
    const model = factory({ ...core, va });
    this.core = core;
    const queues = new DeviceQueues(self, bus, shm.hostIrq);
    serveMachine(inv, queues, model);
    this.dev = { model, queues, loop: new DeviceLoop(self.ctl, liveCalls.work, liveCalls.invCheckLoop) };
  }

  createQueue(q: QueueConfig): void {
    this.realised().queues.create(q);
  }

  start(): void {
    const d = this.realised();
    this.retired.started();
    d.loop.start();
    d.model.start?.();
  }

  stop(): void {
    this.realised().loop.stop();
  }

  /**
   * Forgets the machine after stop(), once the device loop has ended, so
   * the next configure() builds a new device from nothing. The JIT keeps
   * what it compiled: the same classes get new instances, and the machine
   * is retired (kept unreachable to the next one) until those exist, so
   * the maps the optimized code checks never die (./runtime/thread_machine.ts).
   */
  async reset(): Promise<void> {
    if (this.dev && !this.dev.loop.stopping) throw new Error(`${this.core!.self.name}: reset before stop`);
    await this.dev?.loop.ended();
    // The machine's SharedArrayBuffers (RAM, device memories, wasm memories) are freed only
    // when every isolate that saw them collects; an idle pooled worker allocates next to
    // nothing and would keep each earlier machine's memory resident (512 MiB of RAM a run,
    // measured) until the pool closed: the retired machine is collected when the next one
    // starts or binds (at once when an older one was still kept).
    if (this.dev) this.retired.retire({ dev: this.dev, core: this.core, va: this.va, iommu: this.iommu }, this.va !== null);
    forgetMachine();
    this.dev = null;
    this.core = null;
    this.va = null;
    this.iommu = null;
    this.log.length = 0;
    traceSink.w = null;
  }

  errors(): DeviceErrorRecord[] {
    return this.log.slice();
  }

  /** Binding to a process is the runtime's, for every device kind. */
  private readonly runtimeCmds: CmdHandlers<keyof RuntimeOps> = {
    'iommu-attach': (cmd) => {
      if (this.iommu) return { errno: 'EBUSY', message: `${this.core!.self.name}: already behind an IOMMU domain` };
      this.iommu = attachIommu(this.core!, cmd.domain);
      return { errno: 0 };
    },
    'bind-mm': (cmd) => {
      if (this.va?.bound) return { errno: 'EBUSY', message: `${this.core!.self.name}: already bound to a process` };
      if (cmd.iommu && !this.iommu) this.iommu = attachIommu(this.core!, cmd.iommu);
      this.va = new VaSpace(this.core!, cmd, this.iommu);
      this.retired.bound();
      return { errno: 0 };
    },
    'unbind-mm': () => {
      this.va?.detach();
      return { errno: 0 };
    },
    'va-counters': () => ({ errno: 0, ...(this.va?.counters ?? {}) }),
    'va-stream': (cmd) => (this.va ? vaStream(this.va, cmd) : { errno: 'EINVAL', message: `${this.core!.self.name}: va-stream on a device not bound to a process` }),
    'va-prefault': (cmd) => {
      if (!this.va) return { errno: 'EINVAL', message: `${this.core!.self.name}: va-prefault on a device not bound to a process` };
      const r = this.va.prefault(cmd.va, cmd.len, cmd.write);
      return 'pages' in r ? { errno: 0, pages: r.pages } : r;
    },
  };

  deviceCmd(cmd: DeviceCmd): DeviceReply {
    const m = this.realised().model;
    return serveCmd(this.runtimeCmds, cmd) ?? (m.commands && serveCmd(m.commands, cmd)) ?? { errno: 'EINVAL', message: `${this.core!.self.name}: its device kind has no command '${cmd.op}'` };
  }

  /** Counts a served control call, so a running loop may block again. */
  served(): void {
    this.dev?.loop.controlServed();
  }

  private realised(): Realised {
    if (!this.dev) throw new Error('device not configured');
    return this.dev;
  }
}

/** Wraps each control method so the device loop learns the call was served. */
function exposeControl(ep: DeviceEndpoint): DeviceEndpointApi {
  const api = {} as Record<string, (...a: unknown[]) => unknown>;
  for (const name of ['configure', 'createQueue', 'start', 'stop', 'reset', 'errors', 'deviceCmd'] as const) {
    api[name] = (...args: unknown[]) => {
      try {
        return (ep[name] as (...a: unknown[]) => unknown)(...args);
      } finally {
        ep.served();
      }
    };
  }
  return api as unknown as DeviceEndpointApi;
}

/** A full collection of this worker's heap, on demand (reset): --expose-gc for a fresh context only. */
function exposeGc(): () => void {
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}
const collectGarbage = exposeGc();

if (!parentPort) throw new Error('workers/device_main.js must run in a worker_thread');
Comlink.expose(exposeControl(new DeviceEndpoint()), nodeEndpoint(parentPort));
