/**
 * Runs a validated scenario: decides the data path (p2p, or bounce when
 * the topology forbids P2P and the scenario allows the fallback), builds
 * the machine it describes, measures the memcpy baseline, runs the
 * workload, and always tears the machine down — whatever failed, no
 * worker outlives the run, except that a run given a DeviceWorkerPool
 * that ends cleanly (every data check passed) hands its workers, stopped
 * and reset, to the pool for the next run of the same mode.
 */
import { Machine, type MachineBoot, type MachineSpec } from '../devices/machine.js';
import { DeviceWorkerPool } from '../devices/worker_pool.js';
import type { RunTokenSetting } from '../devices/run_tokens.js';
import { DeviceError, P2pRefusedError, PeerVmaError, ScenarioError, VerifyError } from '../errors.js';
import { buildFabric } from '../hw/topology.js';
import type { Fabric } from '../hw/fabric.js';
import { memcpyBaselines, type MemcpyResult } from '../workloads/memcpy_baseline.js';
import { deviceKinds } from '../devices/device_kinds.js';
import { DeviceStats } from '../shm/device_ctl.js';
import { workloadDef } from '../workloads/registry.js';
import { safetyCheck } from '../workloads/kernel_boot.js';
import type { Kernel } from '../kernel/kernel.js';
import type { Accounting, Mode } from '../workloads/workload.js';
import type { Scenario, Workload } from './schema.js';
import { prepareRun, scenarioSource, type Overrides } from './load.js';

/** seed, frames (the workload's size knob) and mode override the scenario, checked as the file is (prepareRun). */
export interface RunOptions extends Overrides {
  /** Records the run's timeline (src/trace/recorder.ts TraceRecorder); absent: not traced. */
  readonly trace?: RunTracer;
  /** Told how far the run is, every PROGRESS_MS, for workloads that say (WorkloadDef.progress). */
  readonly progress?: (p: RunProgress) => void;
  /** Overrides the scenario's machine.runTokens (`--run-tokens`). */
  readonly runTokens?: RunTokenSetting;
  /** Borrow device workers from, and give them back to, this pool (src/devices/worker_pool.ts); absent: fresh workers. */
  readonly pool?: DeviceWorkerPool;
}

export interface RunProgress {
  readonly label: string;
  readonly done: number;
  readonly total: number;
  readonly unit: string;
  /** The last call of the run (done = total when it succeeded). */
  readonly final: boolean;
}

const PROGRESS_MS = 200;

/** Polls the workload's progress device while the run goes; returns the stopper. */
function watchProgress(machine: Machine, w: Workload, label: string, report: ((p: RunProgress) => void) | undefined): () => void {
  const p = workloadDef(w).progress;
  if (!report || !p) return () => undefined;
  const stats = machine.device(p.device(w)).shm.stats;
  const total = p.total(w);
  const tell = (final: boolean) => report({ label, done: Math.min(total, stats[DeviceStats.commands]), total, unit: p.unit, final });
  tell(false);
  const timer = setInterval(() => tell(false), PROGRESS_MS);
  timer.unref();
  return () => {
    clearInterval(timer);
    tell(true);
  };
}

/** What the runner needs of a trace recorder: ring size, and attach/detach around the workload. */
export interface RunTracer {
  readonly records: number;
  attach(machine: Machine, label: string): void;
  detach(): void;
}

export interface PairVerdict {
  readonly provider: string;
  readonly client: string;
  readonly map: string;
  readonly reason: string;
}

export interface RunReport {
  readonly scenario: string;
  readonly description: string;
  readonly workload: string;
  /** Mode asked for, and the one that ran. */
  readonly requestedMode: Mode;
  readonly mode: Mode;
  /** Why the run fell back to bounce, when it did. */
  readonly fallback: string | null;
  readonly verdicts: readonly PairVerdict[];
  readonly seed: number;
  /** The DRAM-scale copy baseline ratios are taken against (measured once per process). */
  readonly memcpy: MemcpyResult;
  /** The same copy over a span that sits in cache: shown beside, never used for ratios. */
  readonly memcpyCached: MemcpyResult;
  readonly accounting: Accounting;
  /** Every invalidation ack latency of the run, µs (every kernel, every device): the distribution behind p99/max. */
  readonly ackUs: readonly number[];
  /** Modeled PCIe links of the workload's transfers (the last link model it priced), with their utilisation. */
  readonly links: readonly LinkUse[];
  /** BAR slot holds over the run (every exporter): p2p maps and unmaps, slots recycled, and how many of those needed a revoke. */
  readonly p2pSlots: P2pSlotStats;
  /** The emulated machine on this host: devices, boot time and per-worker memory, the device limit, run tokens. */
  readonly machine: MachineLine;
}

export interface MachineLine extends MachineBoot {
  readonly devices: number;
  /**
   * Run-token acquires that had to sleep, and releases that woke a waiting device (0 with tokens off).
   * Run-wide (setup included) and timing-bound: 0 when no more than `runTokens` devices are ever
   * inside a transfer at once, as in unprofiled hmm-peer-fanout on a quiet host (the 8 NICs' short
   * commands seldom overlap); a --cpu-prof run slows the workers enough that they queue.
   */
  readonly tokenWaits: number;
  readonly tokenHandoffs: number;
}

export interface LinkUse {
  readonly id: string;
  readonly label: string;
  /** Weighted bytes the link carried. */
  readonly bytes: number;
  /** bytes / (capacity x makespan), 0..1. */
  readonly utilisation: number;
  readonly peak: number;
}

/**
 * The run's fabric (built for this run only), with every modelFlows()
 * answer kept: the links a workload priced, for the report. The method is
 * replaced on the instance itself, not on an Object.create() wrapper: a
 * wrapper's prototype is a new object every run, so its hidden class was
 * new every run, and every optimized kernel function that reads the
 * fabric (the p2pAllowed path, then asked on every peer-private page
 * request; now once per pair) deoptimized in
 * every run and was compiled again inside the timed window (hmm-peer-fanout
 * p2p: 9-13 ms of TurboFan per run on the helper threads).
 */
function observedFabric(fabric: Fabric, links: LinkUse[]): Fabric {
  const model = fabric.modelFlows.bind(fabric);
  fabric.modelFlows = (flows) => {
    const r = model(flows);
    links.length = 0;
    for (const u of r.resources) if (u.bytes > 0) links.push({ id: u.id, label: u.label ?? u.id, bytes: u.bytes, utilisation: u.utilisation, peak: u.peak });
    return r;
  };
  return fabric;
}

export interface P2pSlotStats {
  readonly maps: number;
  readonly mappedPages: number;
  readonly unmaps: number;
  readonly unmappedPages: number;
  readonly recycled: number;
  readonly revokedForReuse: number;
}

function slotStats(kernels: readonly Kernel[]): P2pSlotStats {
  const s = { maps: 0, mappedPages: 0, unmaps: 0, unmappedPages: 0, recycled: 0, revokedForReuse: 0 };
  for (const b of kernels.flatMap((k) => k.barManagers())) {
    s.maps += b.stats.maps;
    s.mappedPages += b.stats.mappedPages;
    s.unmaps += b.stats.unmaps;
    s.unmappedPages += b.stats.unmappedPages;
    s.recycled += b.recycled;
    s.revokedForReuse += b.revokedForReuse;
  }
  return s;
}

/** The machine a scenario describes; device props are what the worker models take. */
function machineSpec(sc: Scenario): MachineSpec {
  return {
    ramBytes: sc.machine.ram,
    timeoutMs: sc.machine.timeoutMs,
    runTokens: sc.machine.runTokens,
    devices: sc.devices.map((d) => ({
      name: d.name,
      kind: d.kind,
      memBytes: d.memory,
      barBytes: d.bar,
      props: deviceKinds[d.kind]?.modelProps?.(d.props) ?? d.props,
      ignoreInvalidations: d['x-ignore-invalidations'],
    })),
  };
}

function workloadOf(sc: Scenario): Workload {
  if (!sc.workload) throw new ScenarioError(scenarioSource(sc), ['workload: this scenario has no workload (a topology-only scenario: try `peervma topo`)']);
  return sc.workload;
}

/**
 * A memory too small for what the workload allocates is the scenario's
 * fault, not the run's: an input error naming the key that sizes it
 * (machine.ram or devices[i].memory). Pairs with the allocator names given
 * in src/devices/machine.ts ('system RAM', '<device> memory').
 */
/**
 * A device error in a run whose safety checker saw violations: those are
 * the likelier cause (a device that ignored invalidations wrote through
 * stale translations into another device's rings or frames), so the run
 * fails as a failed safety check that names both.
 */
function safetyFirst(e: unknown, kernels: readonly Kernel[]): unknown {
  if (!(e instanceof DeviceError) || kernels.length === 0) return e;
  const safety = safetyCheck(kernels);
  return safety.ok ? e : new VerifyError(`check failed: ${safety.name}: ${safety.detail}; then ${e.message}`);
}

function memoryTooSmall(e: unknown, sc: Scenario): unknown {
  if (!(e instanceof PeerVmaError) || e.code !== 'ENOMEM') return e;
  const dev = sc.devices.findIndex((d) => e.object === `${d.name} memory`);
  const key = e.object === 'system RAM' ? 'machine.ram' : dev >= 0 ? `devices[${dev}].memory` : null;
  if (key === null) return e;
  const got = dev >= 0 ? sc.devices[dev].memory : sc.machine.ram;
  return new ScenarioError(scenarioSource(sc), [`${key}: got ${got}; too small for this run of ${sc.workload?.kind ?? 'the scenario'} (${e.object}: ${e.reason})`]);
}

/**
 * Decides the data path. p2p needs every pair the workload names to be
 * allowed by the fabric under the scenario's policy; otherwise the
 * scenario's `fallback` says refuse (P2pRefusedError, with the fabric's
 * reasons) or bounce.
 */
function decideMode(fabric: Fabric, w: Workload, requested: Mode): { mode: Mode; fallback: string | null; verdicts: PairVerdict[] } {
  if (requested === 'bounce') return { mode: 'bounce', fallback: null, verdicts: [] };
  const verdicts = workloadDef(w).p2pPairs(w).map(([provider, client]) => {
    const v = fabric.mapType(provider, client);
    return { provider, client, map: v.map, reason: v.reason };
  });
  const refused = verdicts.filter((v) => v.map === 'not-supported');
  if (refused.length === 0) return { mode: 'p2p', fallback: null, verdicts };
  const why = refused.map((v) => `${v.provider} -> ${v.client}: ${v.reason}`).join('\n');
  if (w.fallback === 'bounce') return { mode: 'bounce', fallback: why, verdicts };
  throw new P2pRefusedError(w.kind, why);
}

/**
 * Runs the scenario; throws DeviceError / LimitError / P2pRefusedError on
 * failure, after teardown. Failed data checks are in the report's
 * accounting (assertChecks turns them into a VerifyError) so the summary
 * can still be printed.
 */
export async function runScenario(sc: Scenario, opts: RunOptions = {}): Promise<RunReport> {
  sc = prepareRun(sc, opts);
  const seed = sc.seed;
  const w = workloadOf(sc);
  const fabric = buildFabric(sc.topology, sc.devices.map((d) => d.name), seed);
  const requestedMode = w.mode;
  const { mode, fallback, verdicts } = decideMode(fabric, w, requestedMode);
  const { dram: memcpy, cached: memcpyCached } = memcpyBaselines();
  const machine = await Machine.create({ ...machineSpec(sc), ...(opts.runTokens !== undefined ? { runTokens: opts.runTokens } : {}), traceRecords: opts.trace?.records ?? 0, label: `${sc.name} (${mode})` }, { pool: opts.pool });
  let accounting: Accounting;
  /** Workers go back to a pool only from a run whose every check passed. */
  let clean = false;
  const kernels: Kernel[] = [];
  const links: LinkUse[] = [];
  opts.trace?.attach(machine, `${sc.name} (${mode})`);
  const stopProgress = watchProgress(machine, w, `${sc.name} ${mode}`, opts.progress);
  try {
    const a = await workloadDef(w).run({ machine, fabric: observedFabric(fabric, links), seed, mode, kernels }, { ...w, mode });
    accounting = kernels.length > 0 ? { ...a, checks: [...a.checks, safetyCheck(kernels)] } : a;
    clean = accounting.checks.every((c) => c.ok);
  } catch (e) {
    throw safetyFirst(memoryTooSmall(e, sc), kernels);
  } finally {
    stopProgress();
    opts.trace?.detach();
    await machine.shutdown({ recycle: clean });
  }
  const tokens = machine.runTokens?.stats ?? { waits: 0, handoffs: 0 };
  const ackUs = kernels.flatMap((k) => machine.devices.flatMap((d) => k.invalidator(d.spec.name).stats.ackUs));
  return { scenario: sc.name, description: sc.description, workload: w.kind, requestedMode, mode, fallback, verdicts, seed, memcpy, memcpyCached, accounting, ackUs, links, p2pSlots: slotStats(kernels), machine: { devices: machine.devices.length, ...machine.boot, tokenWaits: tokens.waits, tokenHandoffs: tokens.handoffs } };
}

/**
 * Runs both modes, one machine each: p2p first, then bounce. With
 * `warmup`, each mode first runs once untimed (not traced, no progress,
 * its report dropped), as `peervma bench` does: the kernel's side of each
 * mode (mapping, faults, invalidation in p2p; host copies in bounce) and
 * each device's side (the camera's VA/TLB path, the NIC's SEND path) is
 * JavaScript compiled on first use in its thread, a cost the modelled
 * machine never pays. The kernel's thread stays warm by itself; the device
 * threads stay warm because each mode has its own DeviceWorkerPool: the
 * timed run of a mode re-configures the threads its warm-up ran on
 * (stopped and reset in between, no state carried). Without the warm-up
 * both modes run on fresh workers and the compiling lands in the windows.
 */
export async function compareScenario(sc: Scenario, opts: RunOptions = {}, warmup = false): Promise<[RunReport, RunReport]> {
  if (!warmup) return [await runScenario(sc, { ...opts, mode: 'p2p' }), await runScenario(sc, { ...opts, mode: 'bounce' })];
  const pools = { p2p: new DeviceWorkerPool(), bounce: new DeviceWorkerPool() };
  try {
    const quiet = { seed: opts.seed, frames: opts.frames, runTokens: opts.runTokens };
    await runScenario(sc, { ...quiet, mode: 'p2p', pool: pools.p2p });
    await runScenario(sc, { ...quiet, mode: 'bounce', pool: pools.bounce });
    const p2p = await runScenario(sc, { ...opts, mode: 'p2p', pool: pools.p2p });
    // p2p's idle workers each hold their last machine (workers/runtime/thread_machine.ts): not through bounce's window.
    await pools.p2p.close();
    const bounce = await runScenario(sc, { ...opts, mode: 'bounce', pool: pools.bounce });
    return [p2p, bounce];
  } finally {
    await Promise.all([pools.p2p.close(), pools.bounce.close()]);
  }
}
