/**
 * What every workload is and reports. A workload runs on a booted machine
 * in one of two modes — `p2p`, the direct device-to-device path the RFC
 * enables, or `bounce`, through system RAM as without it — and returns the
 * same accounting in both, so the two can be compared line by line.
 *
 * Counting rules (DESIGN.md section 7):
 * - ramBytes: every byte a device DMA'd from or to system RAM;
 * - bounceBytes: the part of ramBytes that only staged data between two
 *   devices (each bounce counts its two copies); p2p mode has none;
 * - p2pBytes: every byte a device DMA'd from or to another device's memory;
 * - hostInterventions: times the kernel had to act in the data path
 *   (commands it submitted, frames it passed along), after setup.
 */
import type { Machine } from '../devices/machine.js';
import type { Fabric } from '../hw/fabric.js';
import type { Kernel } from '../kernel/kernel.js';
import type { Workload } from './schema.js';
import type { Mm } from '../kernel/mm.js';

export type Mode = 'p2p' | 'bounce';

export interface Check {
  readonly name: string;
  readonly ok: boolean;
  readonly detail: string;
}

export interface InvalidationStats {
  readonly sent: number;
  readonly acked: number;
  readonly maxAckUs: number;
  readonly p99AckUs: number;
  /** Sum of the ack latencies: kernel time spent waiting for devices to drop translations (the invalidation stage). */
  readonly ackWaitMs: number;
}

export interface StageTimes {
  readonly device: string;
  readonly dmaMs: number;
  readonly computeMs: number;
  /** Device time spent waiting on its page requests (DeviceStats.faultWaitNs). */
  readonly faultWaitMs: number;
  /** Kernel time spent serving the device's page requests (DeviceStats.mapNs). */
  readonly mapMs: number;
  readonly commands: number;
  readonly bytesFromRam: number;
  readonly bytesToRam: number;
  readonly bytesFromPeer: number;
  readonly bytesToPeer: number;
}

export interface Accounting {
  /** Useful bytes the workload delivered (frames, IO payload, streamed results). */
  readonly payloadBytes: number;
  readonly ramBytes: number;
  readonly bounceBytes: number;
  readonly p2pBytes: number;
  readonly hostInterventions: number;
  readonly invalidations: InvalidationStats;
  /** Pages devices faulted in again after an invalidation dropped their translation. */
  readonly refaults: number;
  readonly wallMs: number;
  /**
   * CPU time of every thread of the process (main, device workers, V8's
   * compiler and GC threads) during the timed window, when the workload
   * measures it: on cores shared with other work the ratio of two modes
   * follows it more than any stage time.
   */
  readonly cpuMs?: number;
  /** Modeled PCIe time of the same transfers (src/hw bandwidth model), virtual seconds. */
  readonly modeledSeconds: number;
  readonly devices: readonly StageTimes[];
  /** Data checks; the run fails when one is not ok. */
  readonly checks: readonly Check[];
  /**
   * Workload-specific figures. Keys with spaces are for people (the
   * summary prints them, a number with its unit from WorkloadDef.units);
   * camelCase keys are machine figures, in --json only.
   */
  readonly extra: Readonly<Record<string, number | string>>;
}

export interface WorkloadContext {
  readonly machine: Machine;
  readonly fabric: Fabric;
  readonly seed: number;
  readonly mode: Mode;
  /** Kernels booted for the run (bootKernel adds them); the runner checks their safety logs after it. */
  readonly kernels: Kernel[];
  /** Set when several instances run on the machine (src/workloads/instances.ts): they share one start, one kernel, processes by name. */
  readonly boot?: SharedBoot;
}

/**
 * What the instances of one run share (src/workloads/instances.ts): the
 * machine is started once, one kernel is booted, and a process named by
 * several instances is one Mm. Absent from a context (a single instance),
 * each call below does its work itself, as before.
 * Lifetime: one per runInstances call; main thread only.
 */
export interface SharedBoot {
  started: Promise<void> | null;
  kernel: Promise<Kernel> | null;
  /** Processes by scenario name. */
  readonly mms: Map<string, Mm>;
  /**
   * The run's fabric itself, which the kernel boots from: an instance's
   * ctx.fabric is a wrapper made per run (capturingFabric), and a policy
   * closed over a new hidden class every run sent the kernel's inlined
   * p2pAllowed path back to the compiler inside the timed window.
   */
  readonly fabric: Fabric;
  /**
   * Resolves once every instance has called it (or failed): an instance
   * that reads counters another instance can still move (invalidations of
   * a shared process) waits here first.
   */
  readonly quiesce: () => Promise<void>;
}

export const NO_INVALIDATIONS: InvalidationStats = { sent: 0, acked: 0, maxAckUs: 0, p99AckUs: 0, ackWaitMs: 0 };

/** A device a workload needs, named under `workload:`. */
export interface Role {
  /** Key under `workload:` naming the device. */
  readonly key: string;
  readonly device: string;
  /** Device kinds that can play the role. */
  readonly kinds: readonly string[];
}

/** What a workload kind is: its roles, what it needs of the fabric, and how it runs. */
export interface WorkloadDef<W extends Workload = Workload> {
  readonly kind: W['kind'];
  readonly doc: string;
  roles(w: W): Role[];
  /** Processes the workload uses, by the key naming them. */
  processes(w: W): { key: string; name: string }[];
  /** (provider, client) pairs that must be able to talk directly in p2p mode. */
  p2pPairs(w: W): [provider: string, client: string][];
  /**
   * Cross-checks against the devices that the schema cannot see (sizes
   * that must fit a device's memory or BAR), as `key path: problem`
   * lines; the loader refuses the file before anything starts.
   */
  validate?(w: W, devices: readonly { name: string; kind: string; memory: number; bar: number; props: Readonly<Record<string, unknown>> }[]): string[];
  /**
   * How far a run is, read from the devices while it goes (a progress
   * bar): the device whose completed commands (DeviceStats.commands) count
   * one unit of the size knob each, in both modes, and how many there are.
   */
  readonly progress?: { device(w: W): string; total(w: W): number; readonly unit: string };
  /** Unit of each numeric `extra` figure the summary prints ('B' means bytes, shown as KiB/MiB). */
  readonly units?: Readonly<Record<string, string>>;
  /** The workload with its size knob (frames, requests, iterations) set to n (--frames). */
  scale(w: W, n: number): W;
  run(ctx: WorkloadContext, w: W): Promise<Accounting>;
}

