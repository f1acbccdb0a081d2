/**
 * One stress run: boot the rig, measure the Atomics round trip, stream,
 * apply the seeded schedule (with the injected fault at its step), collect
 * every violation after every step, probe an injected hang or late ack
 * that has not shown yet (probeInjected), stop, compare the shadow model,
 * and report. Exit code 1 when any violation was seen.
 *
 * The checks (DESIGN.md section 6), all always on:
 *   checker   page generations per DMA run (workers/runtime/safety_check.ts):
 *             stale-generation, remapped
 *   payload   the importers' own judgement of every page they read back
 *             (workers/x_stress.ts): poison-read, stale-data, corrupt-data
 *   kernel    an invalidation that ended without the ack of a device the
 *             IOMMU cannot stop (ack-timeout)
 *   protocol  seq odd or invalidations active at rest, a readBegin that
 *             hangs, RAM pages left after the process exits, a refused
 *             blockable invalidation (WARN)
 *   shadow    at the end, every page of every surviving buffer against
 *             its writer's shadow (the seqs it wrote there this epoch)
 */
import { PAGE_SIZE, POISON_BYTE } from '../shm/constants.js';
import { DeviceCtl } from '../shm/device_ctl.js';
import { judgePage, STRESS_VIOLATION_KINDS, STRESS_VIOLATION_NAMES, STRESS_VIOLATION_RECORDS, stressDevWord, StressDevStat, StressInject, StressViolationKind, stressRecordWord, StressViolation as SV } from '../shm/stress_layout.js';
import { DeviceError } from '../errors.js';
import type { Machine } from '../devices/machine.js';
import { percentile, type InjectKind, type InjectOutcome, type StressReport, type StressViolation } from './report.js';
import { StressRig } from './rig.js';
import type { DeviceInvalidator } from '../kernel/invalidate_broadcast.js';
import { bufferPlan, Schedule, type Op } from './schedule.js';

export interface StressOptions {
  readonly seed: number;
  /** Operations to run; ignored when durationS is set. */
  readonly ops: number;
  readonly durationS?: number;
  readonly importers: number;
  readonly iommu: boolean;
  readonly inject?: InjectKind;
  readonly ackTimeoutMs?: number;
  /** Longest pause before a kernel operation, µs (default 2000; 0: back to back). */
  readonly gapMaxUs?: number;
  /** Draw slow-device operations (default true). */
  readonly slow?: boolean;
  /** Called after every step (progress bars). */
  readonly onStep?: (step: number) => void;
  /** An explicit list of operations instead of the seeded schedule (property tests shrink these). */
  readonly schedule?: readonly Op[];
  /**
   * Hook for a trace recorder (the --trace flag belongs to the trace work):
   * every operation as it starts and ends, and every violation as it is collected.
   */
  readonly trace?: (ev: { readonly ph: 'op-start' | 'op-end' | 'violation'; readonly step: number; readonly name: string; readonly tUs: number }) => void;
  /** Records the devices' and the kernel's timeline (src/trace/recorder.ts TraceRecorder, --trace). */
  readonly recorder?: { readonly records: number; attach(machine: Machine, label: string): void; detach(): void };
  /** Test-only hooks (x- knobs): break something on purpose after boot or before the end. */
  readonly xHooks?: { readonly noStream?: boolean; readonly controlTimeoutMs?: number; readonly afterBoot?: (rig: StressRig) => void | Promise<void>; readonly beforeEnd?: (rig: StressRig) => void | Promise<void> };
}

const MAX_LISTED = 200;
/** probeInjected gives up after this many ack deadlines, or PROBE_MAX_MS, whichever is shorter (two deadlines at least). */
const PROBE_ACK_TIMEOUTS = 20;
const PROBE_MAX_MS = 5000;
const POISON_WORD = POISON_BYTE * 0x01010101;

export async function runStress(o: StressOptions): Promise<StressReport> {
  const ackTimeoutMs = o.ackTimeoutMs ?? 1000;
  const bufs = bufferPlan(o.importers);
  const sched = new Schedule(o.seed, bufs, o.importers, o.gapMaxUs ?? 2000, o.schedule, o.slow ?? true);
  const rig = await StressRig.create({ importers: o.importers, iommu: o.iommu, ackTimeoutMs, bufs, seed: o.seed, traceRecords: o.recorder?.records, controlTimeoutMs: o.xHooks?.controlTimeoutMs ?? 10000 });
  o.recorder?.attach(rig.machine, `stress seed ${o.seed}${o.iommu ? ', IOMMU on' : ''}`);
  const run = new StressRun(o, rig, sched, ackTimeoutMs);
  try {
    return await run.run();
  } finally {
    o.recorder?.detach();
    await rig.shutdown();
  }
}

/** The injected fault in flight: on which device (and job slot), from which step; cleared once it showed and was dealt with. */
interface InjectState {
  readonly kind: InjectKind;
  readonly device: string;
  readonly slot: number;
  readonly step: number;
  cleared: boolean;
  /** Invalidations probeInjected sent after the schedule (0: the fault showed during it). */
  probes: number;
}

/**
 * One run's state between boot and report: the violations collected so
 * far, the step and operation they are stamped with, and the injected
 * fault. Lifetime: built by runStress once the rig is up; the rig is shut
 * down by runStress, not here.
 */
class StressRun {
  /** The first MAX_LISTED violations; violationCount and kinds count them all. */
  readonly violations: StressViolation[] = [];
  private violationCount = 0;
  /** Exact count per 'source/kind'. */
  private readonly kinds: Record<string, number> = {};
  /** Exact count per device ('-' for the protocol's own): an injected device's outcome counts them all, not the listed ones. */
  private readonly byDevice = new Map<string, number>();
  private curStep = -1;
  private curOp = 'setup';
  /** How many of each source's violations were already collected. */
  private readonly seen: { checker: Map<string, number>; payload: number[]; payloadKinds: number[][]; kernel: number; warnings: number };
  private readonly total: number;
  private readonly injectAt: number;
  private injectState: InjectState | null = null;
  /** Importers that failed since the last step, to tear down. */
  private readonly crashed: string[] = [];
  private ops = 0;
  private opsFailed = 0;

  constructor(
    private readonly o: StressOptions,
    private readonly rig: StressRig,
    private readonly sched: Schedule,
    private readonly ackTimeoutMs: number,
  ) {
    const perImporter = <T>(f: () => T): T[] => Array.from({ length: o.importers }, f);
    this.seen = { checker: new Map<string, number>(), payload: perImporter(() => 0), payloadKinds: perImporter(() => new Array<number>(STRESS_VIOLATION_KINDS).fill(0)), kernel: 0, warnings: 0 };
    this.total = o.schedule ? o.schedule.length : o.durationS ? Number.POSITIVE_INFINITY : o.ops;
    this.injectAt = o.inject ? sched.injectStep(Math.min(5, Math.floor((o.durationS ? 100 : o.ops) / 5)), Math.max(1, Math.floor((o.durationS ? 100 : o.ops) / 3))) : -1;
    for (let i = 0; i < o.importers; i++) rig.machine.device(`imp${i}`).handle.onFailure(() => this.crashed.push(`imp${i}`));
  }

  /** Round trip, stream, the schedule, the end-of-run checks, the report. */
  async run(): Promise<StressReport> {
    const rig = this.rig;
    const roundTripUs = await measureRoundTrip(rig);
    await this.o.xHooks?.afterBoot?.(rig);
    if (!this.o.xHooks?.noStream) rig.startStreaming();
    const t0 = performance.now();
    await this.scheduleLoop(t0);
    await this.o.xHooks?.beforeEnd?.(rig);
    const wallMs = performance.now() - t0;
    await this.probeInjected();
    rig.stopStreaming();
    await this.endChecks();
    return this.buildReport(roundTripUs, wallMs);
  }

  private readonly add = (v: StressViolation): void => {
    this.tally(`${v.source}/${v.kind}`, 1, v.device);
    this.list(v);
  };

  /** Counts n violations of `key` ('source/kind') by `device`, listed or not. */
  private tally(key: string, n: number, device: string): void {
    if (n <= 0) return;
    this.violationCount += n;
    this.byDevice.set(device, (this.byDevice.get(device) ?? 0) + n);
    this.kinds[key] = (this.kinds[key] ?? 0) + n;
  }

  /** Lists a violation counted elsewhere (the payload records, counted by the devices' per-kind counters). */
  private list(v: StressViolation): void {
    this.o.trace?.({ ph: 'violation', step: v.step, name: `${v.source}/${v.kind} ${v.device}`, tUs: performance.now() * 1000 });
    if (this.violations.length < MAX_LISTED) this.violations.push(v);
  }

  /** Operations until the count (or the duration) is reached. */
  private async scheduleLoop(t0: number): Promise<void> {
    const deadline = this.o.durationS ? t0 + this.o.durationS * 1000 : Number.POSITIVE_INFINITY;
    while (this.ops < this.total && performance.now() < deadline) await this.step(this.sched.next());
  }

  /**
   * A hang or late ack injected during the schedule shows at the first
   * invalidation the device must answer once the fault took effect (at
   * the top of its next pass). A device that spent the rest of the
   * schedule blocked on a page request never reached the fault: the run
   * ended with it untested ("missed"; the schedule's operations take
   * 0.1-0.5 ms each, a device's pass with a page request ~10 ms, and with
   * session 12's lazy ack, which did not wait for a device asleep on its
   * request, 3 of 6 seeds of 40 operations ended so). So, with streaming
   * still on, the device gets one single-page invalidation at a time, with
   * an event-loop turn between (its page request is served, it runs on
   * into the fault), until one times out (named, then fenced or reported,
   * and torn down as in a step) or PROBE_ACK_TIMEOUTS deadlines passed.
   */
  private async probeInjected(): Promise<void> {
    const s = this.injectState;
    if (!s || s.cleared || (s.kind !== 'hang' && s.kind !== 'late')) return;
    // A device that already failed another way has nothing left to show (its handle rejects).
    if (this.rig.gone.has(s.device) || this.rig.machine.device(s.device).handle.failed) return;
    const inv = this.rig.kernel.invalidator(s.device);
    const ack = this.ackTimeoutMs;
    const end = performance.now() + Math.max(2 * ack, Math.min(PROBE_ACK_TIMEOUTS * ack, PROBE_MAX_MS));
    this.curOp = 'probe after the schedule';
    // The probes are not the run's invalidations (their timeouts stay counted: they are what the probe found).
    await uncounted(inv, async () => {
      try {
        while (!s.cleared && performance.now() < end) {
          await new Promise((res) => setTimeout(res, 1));
          await inv.invalidate([{ start: 0, end: PAGE_SIZE }]);
          s.probes++;
          this.collect();
          await settleInjection(this.rig, s, this.crashed);
          await this.tearDownCrashed();
        }
      } catch {
        // The device failed under the probe (a control call's deadline, a crash): the outcome says what it showed.
      }
    });
  }

  /** Tears down the devices that failed since the last call (DeviceHandle.onFailure). */
  private async tearDownCrashed(): Promise<void> {
    for (const d of this.crashed.splice(0)) await this.rig.tearDown(d);
  }

  /** One operation: inject at its step, wait its gap, apply, collect, settle the injection, tear down the crashed. */
  private async step(op: Op): Promise<void> {
    const { o, rig } = this;
    this.curStep = op.step;
    this.curOp = opName(op);
    rig.setStep(op.step);
    if (op.step === this.injectAt && o.inject) this.injectState = inject(rig, o.inject, op.step, this.ackTimeoutMs);
    if (op.gapUs >= 1000) await new Promise((res) => setTimeout(res, op.gapUs / 1000));
    else await new Promise((res) => setImmediate(res));
    o.trace?.({ ph: 'op-start', step: op.step, name: this.curOp, tUs: performance.now() * 1000 });
    const why = await rig.apply(op);
    o.trace?.({ ph: 'op-end', step: op.step, name: this.curOp, tUs: performance.now() * 1000 });
    this.ops++;
    if (why !== null) {
      this.opsFailed++;
      if (why.startsWith('protocol:')) this.add({ source: 'protocol', kind: 'readbegin-hang', device: '-', buf: op.buf, page: op.page, generation: null, step: op.step, op: this.curOp, detail: why });
    }
    this.collect();
    if (this.injectState && !this.injectState.cleared) await settleInjection(rig, this.injectState, this.crashed);
    await this.tearDownCrashed();
    o.onStep?.(op.step);
  }

  /**
   * With streaming stopped: every live importer's shadow (a device that
   * does not answer is stuck), the shadow compare, then either the
   * at-rest seq check or, when at rest, the process exit and its leak check.
   */
  private async endChecks(): Promise<void> {
    const { rig } = this;
    const notifiers = rig.mm.notifiers;
    this.curOp = 'end of run';
    // A device that failed after the last step (in the probe, or a hook) is torn down as a step
    // would have: the process exit below must not invalidate it.
    await this.tearDownCrashed();
    // Idle: every live importer answers a control call only between two passes.
    const stuck: string[] = [];
    const shadows = await shadowsOf(rig, (name, why) => {
      stuck.push(name);
      this.add({ source: 'protocol', kind: 'device-stuck', device: name, buf: null, page: null, generation: null, step: this.curStep, op: this.curOp, detail: `no answer between two passes: ${why} (a livelock in one transfer, or a hang)` });
    });
    for (const d of stuck) await rig.tearDown(d);
    this.collect();
    shadowCompare(rig, shadows, this.add, this.curStep);
    if (notifiers.activeInvalidateRanges !== 0 || (notifiers.invalidateSeq & 1) === 1) {
      this.add({ source: 'protocol', kind: 'seq-odd-at-rest', device: '-', buf: null, page: null, generation: null, step: this.curStep, op: this.curOp, detail: `seq ${notifiers.invalidateSeq}, ${notifiers.activeInvalidateRanges} invalidation(s) active with every device idle` });
      return;
    }
    // The process exits (exit_mmap: the release invalidation to every
    // importer, then every page freed); with no device lost on the way,
    // every RAM page it had must be back.
    this.curOp = 'process exit';
    await rig.mm.exit();
    this.collect();
    const leaked = rig.machine.ram.usedPages - rig.ramBase;
    if (rig.gone.size === 0 && leaked !== 0) this.add({ source: 'protocol', kind: 'pages-leaked-at-exit', device: '-', buf: null, page: null, generation: null, step: this.curStep, op: this.curOp, detail: `${leaked} RAM page(s) still allocated after the process exited` });
  }

  private buildReport(roundTripUs: number, wallMs: number): StressReport {
    const { o, rig } = this;
    const kernel = rig.kernel;
    const counters = kernel.invalidatorCounters().filter((c) => c.device.startsWith('imp'));
    const ack = counters.flatMap((c) => c.ackUs).sort((a, b) => a - b);
    const iommuFaults = o.iommu ? rig.names.reduce((s, n) => s + (kernel.domain(n)?.faults().count ?? 0), 0) : 0;
    const injected: InjectOutcome[] = [];
    if (this.injectState) injected.push(outcomeOf(rig, this.injectState, o.iommu, iommuFaults, this.byDevice.get(this.injectState.device) ?? 0));
    const ranges = counters.reduce((s, c) => s + c.ranges, 0);
    return {
      seed: o.seed,
      schedule: this.sched.digest(),
      iommu: o.iommu,
      importers: o.importers,
      gapMaxUs: o.gapMaxUs ?? 2000,
      slow: o.slow ?? true,
      ops: this.ops,
      opsFailed: this.opsFailed,
      invalidations: counters.reduce((s, c) => s + c.sent, 0),
      ranges,
      wallMs,
      rangesPerSec: ranges / (wallMs / 1000),
      pagesRead: sum(o.importers, (i) => rig.devStat(i, 'pagesRead')),
      pagesWritten: sum(o.importers, (i) => rig.devStat(i, 'pagesWritten')),
      ioErrors: sum(o.importers, (i) => rig.devStat(i, 'ioErrors')),
      iommuFaults,
      ackUs: { p50: percentile(ack, 50), p99: percentile(ack, 99), max: ack.at(-1) ?? 0, n: ack.length },
      roundTripUs,
      violations: this.violations,
      violationCount: this.violationCount,
      violationDevices: Object.fromEntries(this.byDevice),
      violationKinds: { ...this.kinds },
      injected,
      exitCode: this.violationCount > 0 ? 1 : 0,
    };
  }

  /** Moves every new violation of every source into the report, stamped with the step. */
  private collect(): void {
    this.collectChecker();
    this.collectPayload();
    this.collectKernel();
  }

  /** The safety checkers' records (per binding), beyond those already collected. */
  private collectChecker(): void {
    const { rig, seen } = this;
    for (const src of rig.bindings) {
      const v = src.violations();
      const before = seen.checker.get(src.name) ?? 0;
      if (v.count === before) continue;
      seen.checker.set(src.name, v.count);
      for (const r of v.records.slice(-Math.min(v.count - before, v.records.length))) {
        const at = rig.locate(r.va);
        this.add({ source: 'checker', kind: r.kind, device: r.device, buf: at?.buf ?? null, page: at?.page ?? null, generation: `entry ${r.entryGen}, live ${r.liveGen}`, step: this.curStep, op: this.curOp, detail: `${r.write ? 'write' : 'read'} of va 0x${r.va.toString(16)} through device address 0x${r.devAddr.toString(16)}` });
      }
      // Records the checker's ring lost before they were read: counted, kind unknown.
      this.tally('checker/kind-unknown', v.count - before - v.records.length, src.name);
    }
  }

  /**
   * The importers' payload judgements: the records still in their rings are
   * listed, and every violation is counted by kind from the devices' own
   * counters (a record overwritten before it was read is still counted).
   * Read after the count, the counters may be ahead of the records listed;
   * the next collection lists those, counted already.
   */
  private collectPayload(): void {
    const { rig, seen } = this;
    for (let i = 0; i < this.o.importers; i++) {
      const count = rig.devStat(i, 'violations');
      const kinds = seen.payloadKinds[i];
      for (let k = 1; k <= STRESS_VIOLATION_KINDS; k++) {
        const c = rig.kindCount(i, k);
        this.tally(`payload/${STRESS_VIOLATION_NAMES[k]}`, c - kinds[k - 1], rig.names[i]);
        kinds[k - 1] = c;
      }
      for (let n = Math.max(seen.payload[i], count - STRESS_VIOLATION_RECORDS); n < count; n++) {
        const w = stressRecordWord(i, n);
        const s = rig.shm;
        const kind = STRESS_VIOLATION_NAMES[s[w + SV.kind]] ?? 'unknown';
        const buf = s[w + SV.buf];
        this.list({ source: 'payload', kind, device: rig.names[i], buf, page: s[w + SV.page], generation: `epoch ${rig.bufs[buf]?.epoch ?? '?'}`, step: s[w + SV.step], op: this.curOp, detail: payloadDetail(s[w + SV.kind], s[w + SV.seen], s[w + SV.expected]) });
      }
      seen.payload[i] = count;
    }
  }

  /** The kernel's ack timeouts and the notifiers' refused blockable invalidations. */
  private collectKernel(): void {
    const { rig, seen } = this;
    const kernel = rig.kernel;
    const notifiers = rig.mm.notifiers;
    for (const kv of kernel.violations.slice(seen.kernel)) {
      const at = kv.ranges.map((r) => rig.locate(r.start)).find((x) => x !== null) ?? null;
      this.add({ source: 'kernel', kind: kv.kind, device: kv.device, buf: at?.buf ?? null, page: at?.page ?? null, generation: null, step: this.curStep, op: this.curOp, detail: `invalidation ${kv.seq} not acked within ${kv.ms} ms (IOMMU off: the device may still reach ${kv.ranges.length} range(s) now freed)` });
    }
    seen.kernel = kernel.violations.length;
    if (notifiers.warnings > seen.warnings) {
      this.add({ source: 'protocol', kind: 'refused-blockable', device: '-', buf: null, page: null, generation: null, step: this.curStep, op: this.curOp, detail: `${notifiers.warnings - seen.warnings} blockable invalidation(s) refused by a notifier (WARN)` });
      seen.warnings = notifiers.warnings;
    }
  }
}

/** What a payload record shows: poison carries no seq (the page was freed and poisoned under the device's translation). */
function payloadDetail(kind: number, seen: number, expected: number): string {
  if (kind === StressViolationKind.PoisonRead) return `the page read back as poison (0x${POISON_BYTE.toString(16)} bytes): it was freed while the device still translated to it`;
  const wrote = expected < 0 ? 'the device has no write of it on record' : `the device last wrote seq ${expected}`;
  return seen < 0 ? `the page's contents are not a stress record; ${wrote}` : `page holds seq ${seen}, ${wrote}`;
}

function sum(n: number, f: (i: number) => number): number {
  let s = 0;
  for (let i = 0; i < n; i++) s += f(i);
  return s;
}

function opName(op: Op): string {
  return `${op.kind} buffer ${op.buf} pages ${op.page}+${op.npages}${op.kind === 'migrate-dev' || op.kind === 'iotlb-flush' ? ` imp${op.dev}` : ''}`;
}

/** p50 of 200 empty invalidations to an idle importer: the Atomics round trip of this machine, now. */
async function measureRoundTrip(rig: StressRig): Promise<number> {
  const inv = rig.kernel.invalidator(rig.names[0]);
  const us: number[] = [];
  // These are not the run's invalidations: keep the run's figures clean.
  await uncounted(inv, async () => {
    for (let i = 0; i < 200; i++) {
      const t = performance.now();
      await inv.invalidate([{ start: 0, end: PAGE_SIZE }]);
      us.push((performance.now() - t) * 1000);
    }
  });
  return percentile(us.sort((a, b) => a - b), 50);
}

/** Runs `f`, then takes its invalidations to `inv` out of the run's figures (sent, acked, ranges, ack latencies); timeouts stay counted. */
async function uncounted(inv: DeviceInvalidator, f: () => Promise<void>): Promise<void> {
  const { sent, acked, ranges } = inv.stats;
  const ackUs = inv.stats.ackUs.length;
  try {
    await f();
  } finally {
    inv.stats.sent = sent;
    inv.stats.acked = acked;
    inv.stats.ranges = ranges;
    inv.stats.ackUs.length = Math.min(inv.stats.ackUs.length, ackUs);
  }
}

function inject(rig: StressRig, kind: InjectKind, step: number, ackTimeoutMs: number): InjectState {
  const slot = 0;
  const device = rig.names[slot];
  const ctl = rig.machine.device(device).shm.ctl;
  const w = stressDevWord(slot) + StressDevStat.inject;
  if (kind === 'rogue') Atomics.store(ctl, DeviceCtl.invIgnore, 1);
  else if (kind === 'late') Atomics.store(ctl, DeviceCtl.invDelayMs, Math.round(ackTimeoutMs * 1.5));
  else if (kind === 'hang') Atomics.store(rig.shm, w, StressInject.Hang);
  else Atomics.store(rig.shm, w, StressInject.Throw);
  return { kind, device, slot, step, cleared: kind === 'rogue', probes: 0 };
}

/** After the injected fault shows: late acks are cleared; a hung device is named, failed and torn down. */
async function settleInjection(rig: StressRig, s: { kind: InjectKind; device: string; cleared: boolean }, crashed: string[]): Promise<void> {
  const c = rig.kernel.invalidatorCounters().find((x) => x.device === s.device);
  if ((s.kind === 'late' || s.kind === 'hang') && c && c.timedOut > 0) {
    s.cleared = true;
    if (s.kind === 'late') Atomics.store(rig.machine.device(s.device).shm.ctl, DeviceCtl.invDelayMs, 0);
    else {
      rig.machine.device(s.device).handle.fail(new DeviceError(s.device, 'timeout', 'stopped acking invalidations (stress --inject hang)'));
      crashed.push(s.device);
    }
  }
  if (s.kind === 'crash' && rig.gone.has(s.device)) s.cleared = true;
}

/** `mine`: every violation counted against the injected device (the report lists only the first MAX_LISTED). */
function outcomeOf(rig: StressRig, s: { kind: InjectKind; device: string; step: number; probes: number }, iommu: boolean, iommuFaults: number, mine: number): InjectOutcome {
  const c = rig.kernel.invalidatorCounters().find((x) => x.device === s.device);
  const base = { kind: s.kind, device: s.device, step: s.step, shownBy: s.probes > 0 ? ('probe' as const) : ('schedule' as const) };
  if (s.kind === 'crash') {
    const dead = rig.machine.device(s.device).handle.failed;
    return { ...base, expected: 'torn-down', outcome: dead && rig.gone.has(s.device) ? 'torn-down' : 'missed', detail: dead ? `${dead.message}; binding closed, device-private pages migrated back` : 'the device did not crash' };
  }
  const expected = iommu ? 'contained' : 'caught';
  if (s.kind === 'rogue') {
    if (mine > 0) return { ...base, expected, outcome: 'caught', detail: `${mine} violation(s) by the rogue device (IOMMU faults ${iommuFaults})` };
    if (iommuFaults > 0) return { ...base, expected, outcome: 'contained', detail: `${iommuFaults} stale access(es) blocked as IOMMU faults, no violation` };
    return { ...base, expected, outcome: 'missed', detail: 'the rogue device never used a stale translation' };
  }
  const t = c?.timedOut ?? 0;
  if (t === 0) return { ...base, expected, outcome: 'missed', detail: 'no invalidation timed out' };
  const torn = (s.kind === 'hang' ? '; failed and torn down' : '') + (s.probes > 0 ? `; shown by probe ${s.probes} after the schedule` : '');
  if (c?.fenced) return { ...base, expected, outcome: 'contained', detail: `${t} invalidation(s) not acked in time: fenced off its IOMMU domain${torn}` };
  return { ...base, expected, outcome: 'caught', detail: `${t} invalidation(s) not acked in time: ack-timeout violation${torn}` };
}

/** Every live importer's shadow (its accepted seqs per page of the buffers it writes). */
async function shadowsOf(rig: StressRig, stuck: (name: string, why: string) => void): Promise<Map<number, { epoch: number; acc: (number[] | null)[] }>> {
  const out = new Map<number, { epoch: number; acc: (number[] | null)[] }>();
  for (let i = 0; i < rig.names.length; i++) {
    const d = rig.machine.device(rig.names[i]);
    if (rig.gone.has(d.spec.name) || d.handle.failed) continue;
    let r;
    try {
      r = await d.handle.cmd({ op: 'stress-shadow' });
    } catch (e) {
      stuck(d.spec.name, e instanceof Error ? e.message : String(e));
      continue;
    }
    if (r.errno !== 0) throw new DeviceError(d.spec.name, 'device-error', r.message);
    for (const s of r.shadows) out.set(s.buf, { epoch: s.epoch, acc: s.acc });
  }
  return out;
}

/** The end-of-run compare: every page of every buffer, read by the kernel, against its writer's shadow. */
function shadowCompare(rig: StressRig, shadows: Map<number, { epoch: number; acc: (number[] | null)[] }>, add: (v: StressViolation) => void, step: number): void {
  const k = rig.kernel;
  const page = new Int32Array(PAGE_SIZE / 4);
  const bytes = new Uint8Array(page.buffer);
  rig.bufs.forEach((b, i) => {
    const sh = shadows.get(i);
    const writer = rig.names[b.spec.writer];
    for (let p = 0; p < b.spec.npages; p++) {
      const va = b.va + p * PAGE_SIZE;
      // Where the page lives goes into the detail: a stale payload in the rogue's own
      // device memory (not behind the IOMMU) is not one on a bus address.
      let backing: string;
      if (b.spec.kind === 'bar') {
        const pg = rig.exporter.pageOf(b.vma!, p);
        bytes.set(rig.machine.device('exp0').shm.mem!.subarray(pg * PAGE_SIZE, (pg + 1) * PAGE_SIZE));
        backing = `exp0's BAR page 0x${pg.toString(16)}`;
      } else {
        const pte = rig.mm.pt.get(va / PAGE_SIZE);
        if (!pte || pte.kind === 'zero') { bytes.fill(0); backing = 'the zero page'; }
        else if (pte.kind === 'ram') { bytes.set(k.ramBytes.subarray(pte.pfn * PAGE_SIZE, (pte.pfn + 1) * PAGE_SIZE)); backing = `RAM pfn 0x${pte.pfn.toString(16)}`; }
        else { bytes.set(pte.devmem.bytes.subarray(pte.page * PAGE_SIZE, (pte.page + 1) * PAGE_SIZE)); backing = `${pte.devmem.owner.name}'s device memory page 0x${pte.page.toString(16)}`; }
      }
      const st = judgePage(page, 0, POISON_WORD);
      const v = (kind: string, detail: string): void => add({ source: 'shadow', kind, device: writer, buf: i, page: p, generation: `epoch ${b.epoch}`, step, op: 'end of run', detail: `${detail}; backed by ${backing}` });
      if (st.kind === 'poison') v('poison-live', 'a live page of a surviving buffer holds poison (freed under its mapping)');
      else if (st.kind === 'corrupt') v('corrupt', 'neither zero nor a valid payload (torn or foreign write)');
      else if (st.kind === 'payload' && sh && sh.epoch === b.epoch) {
        const acc = sh.acc[p];
        if (st.epoch !== b.epoch || !acc || !acc.includes(st.seq)) v('stale', `holds seq ${st.seq} of epoch ${st.epoch}; the writer last wrote seq ${acc?.at(-1) ?? 'none'} this epoch`);
      } else if (st.kind === 'payload' && st.epoch !== b.epoch) v('stale', `holds a payload of epoch ${st.epoch}, buffer is at epoch ${b.epoch}`);
    }
  });
}
