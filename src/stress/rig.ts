/**
 * The machine a stress run drives: K x-stress importers bound to one
 * process, an exporter device whose BAR window (16 slots) is smaller than
 * the buffers exported through it, the job table, and the kernel
 * operations of the schedule (src/stress/schedule.ts) applied to the
 * buffers while the importers stream.
 *
 * Lifetime: StressRig.create boots everything; startStreaming() starts
 * the importers; quiesce() makes them idle (stopStreaming() only asks);
 * shutdown() ends the machine.
 * Main thread only. Errors of an operation that the kernel refuses
 * (ENOMEM, EBUSY, ...) or that a dead device aborts are counted, never
 * thrown: the run goes on.
 */
import { DeviceError } from '../errors.js';
import { PAGE_SIZE } from '../shm/constants.js';
import { DeviceCtl, ringWake } from '../shm/device_ctl.js';
import { IOVA_BASE } from '../shm/iommu_layout.js';
import { storeU64 } from '../shm/layout.js';
import { STRESS_MAX_BUFS, StressBuf, StressBufKind, stressBufWord, stressDevWord, StressDevStat, StressHdr, stressKindWord, stressShmBytes, type StressViolationKind } from '../shm/stress_layout.js';
import { Machine, type DeviceSpec } from '../devices/machine.js';
import { BarExporter } from '../drivers/bar_exporter.js';
import { ImporterBinding } from '../drivers/importer_binding.js';
import { IOVA_PAGES } from '../kernel/iommu.js';
import { Kernel } from '../kernel/kernel.js';
import { allP2p } from '../kernel/p2p_map.js';
import { migrateToDevice, migrateToSystem } from '../kernel/migrate.js';
import { PROT_READ, PROT_WRITE, type Mm } from '../kernel/mm.js';
import { DriverLock } from '../kernel/driver_lock.js';
import type { IntervalNotifier } from '../kernel/mmu_notifier.js';
import type { Vma } from '../kernel/vma.js';
import type { BufSpec, Op } from './schedule.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const RW = PROT_READ | PROT_WRITE;

export interface RigOptions {
  readonly importers: number;
  readonly iommu: boolean;
  readonly ackTimeoutMs: number;
  readonly bufs: readonly BufSpec[];
  readonly seed: number;
  /** Records per device trace ring (--trace); 0 or absent: not traced. */
  readonly traceRecords?: number;
  /** Deadline of every control call to a device (Machine timeoutMs). */
  readonly controlTimeoutMs: number;
}

/** A live buffer and the mappings it had (for naming violations by VA). */
export interface LiveBuf {
  readonly spec: BufSpec;
  va: number;
  vma: Vma | null;
  epoch: number;
  /** Every VA range this buffer had, so a violation at an old VA is still named. */
  readonly history: { va: number; epoch: number }[];
}

export class StressRig {
  readonly shm: Int32Array<SharedArrayBuffer>;
  readonly names: string[];
  readonly bufs: LiveBuf[] = [];
  readonly notifiers: IntervalNotifier[] = [];
  /** Importers torn down (crashed, hung): no more ops target them. */
  readonly gone = new Set<string>();
  private readonly lock = new DriverLock('stress notifier');
  /** RAM pages in use before the process touched anything (the zero page). */
  readonly ramBase: number;

  private constructor(
    readonly machine: Machine,
    readonly kernel: Kernel,
    readonly mm: Mm,
    readonly bindings: ImporterBinding[],
    readonly exporter: BarExporter,
    readonly opts: RigOptions,
  ) {
    this.names = bindings.map((b) => b.name);
    this.ramBase = machine.ram.usedPages;
    this.shm = new Int32Array(new SharedArrayBuffer(stressShmBytes(opts.importers)));
  }

  static async create(opts: RigOptions): Promise<StressRig> {
    if (opts.importers > 4) throw new Error(`stress: at most 4 importers share the exporter's 32 BAR slots without thrashing (asked ${opts.importers})`);
    if (opts.bufs.length > STRESS_MAX_BUFS) throw new Error(`stress: ${opts.bufs.length} buffers, the job table holds ${STRESS_MAX_BUFS}`);
    const devices: DeviceSpec[] = [];
    for (let i = 0; i < opts.importers; i++) devices.push({ name: `imp${i}`, kind: 'x-stress', memBytes: 1 * MiB, barBytes: 64 * KiB, props: {} });
    // 32 BAR slots: every importer's burst in flight fits (8 x 4), the BAR buffers (12 x K) do not: slots recycle.
    devices.push({ name: 'exp0', kind: 'x-stress', memBytes: 2 * MiB, barBytes: 128 * KiB, props: {} });
    const machine = await Machine.create({ ramBytes: 32 * MiB, devices, timeoutMs: opts.controlTimeoutMs, traceRecords: opts.traceRecords ?? 0 });
    try {
      await machine.start();
      // One switch under every device: the stress is about invalidation, not topology.
      const kernel = Kernel.boot(machine, { policy: allP2p, iommu: opts.iommu, check: true, ackTimeoutMs: opts.ackTimeoutMs });
      const mm = kernel.createMm();
      const bindings: ImporterBinding[] = [];
      for (let i = 0; i < opts.importers; i++) bindings.push(await ImporterBinding.bind(kernel, `imp${i}`, mm));
      const rig = new StressRig(machine, kernel, mm, bindings, new BarExporter(kernel, 'exp0'), opts);
      for (const spec of opts.bufs) {
        const b: LiveBuf = { spec, va: 0, vma: null, epoch: 0, history: [] };
        rig.bufs.push(b);
        await rig.mapBuf(b);
      }
      Atomics.store(rig.shm, StressHdr.nbufs, rig.bufs.length);
      for (let i = 0; i < opts.importers; i++) await machine.device(`imp${i}`).handle.call('deviceCmd', { op: 'stress-attach', shm: rig.shm.buffer, slot: i, seed: opts.seed });
      return rig;
    } catch (e) {
      await machine.shutdown();
      throw e;
    }
  }

  startStreaming(): void {
    Atomics.store(this.shm, StressHdr.run, 1);
    for (const n of this.names) ringWake(this.machine.device(n).shm.ctl);
  }

  /**
   * Asks the importers to stop: a pass that reads run 0 starts no burst
   * (workers/x_stress.ts pass()). A burst in flight runs on: quiesce() waits
   * it out. StressRun.run (run.ts) calls only this and is still safe: its
   * endChecks asks every live importer for its shadow (a control call), which
   * DeviceLoop serves only between two passes, so each answer comes after that
   * device's burst in flight; nothing before those calls needs the devices idle.
   */
  stopStreaming(): void {
    Atomics.store(this.shm, StressHdr.run, 0);
  }

  /**
   * stopStreaming(), then waits until every live importer has come round its
   * device loop once since (as blk_mq_quiesce_queue waits out the dispatches
   * in progress): the burst in flight at the stop is over, and every later
   * pass reads run 0. An importer that fails during the wait (crashed,
   * exited, failed by a deadline) never comes round: it leaves the wait at
   * once, and quiesce rejects with its error as soon as the others are idle.
   * Rejects after timeoutMs naming the importers that did not come round
   * (hung in a pass, or held in one transfer), and any that failed.
   *
   *   main (quiesce)                       importer (DeviceLoop.run)
   *   --------------                       -------------------------
   *   Atomics.store(run, 0)                Atomics.add(heartbeat, 1)
   *   h0 = Atomics.load(heartbeat)         work(): pass(): Atomics.load(run)
   *   ringWake; until heartbeat > h0
   *   [Required: no burst runs once quiesce() has resolved]
   *
   * Pairs with the Atomics.add(heartbeat) in workers/runtime/device_loop.ts
   * run(), which comes before the pass of that round reads run.
   */
  async quiesce(timeoutMs: number): Promise<void> {
    this.stopStreaming();
    const failure = (n: string): DeviceError | null => this.machine.device(n).handle.failed;
    const live = this.names.filter((n) => !this.gone.has(n) && !failure(n));
    const beat = (n: string): number => Atomics.load(this.machine.device(n).shm.ctl, DeviceCtl.heartbeat);
    const h0 = new Map(live.map((n) => [n, beat(n)]));
    for (const n of live) ringWake(this.machine.device(n).shm.ctl);
    const end = performance.now() + timeoutMs;
    const crashed: string[] = [];
    const failedMidWait = (n: string): boolean => {
      const e = failure(n);
      if (e) crashed.push(`${n} crashed while quiesced (${e.message})`);
      return e !== null;
    };
    let behind = live;
    while ((behind = behind.filter((n) => !failedMidWait(n) && beat(n) === h0.get(n))).length > 0) {
      if (performance.now() > end) {
        const hung = `${behind.join(', ')} did not come round the device loop within ${timeoutMs} ms of the stop (hung in a pass, or held in one transfer)`;
        throw new Error(`stress: ${[hung, ...crashed].join('; ')}`);
      }
      await new Promise((res) => setTimeout(res, 1));
    }
    if (crashed.length > 0) throw new Error(`stress: ${crashed.join('; ')}`);
  }

  setStep(step: number): void {
    Atomics.store(this.shm, StressHdr.step, step);
  }

  devStat(i: number, field: Exclude<keyof typeof StressDevStat.fields, 'records' | 'byKind'>): number {
    return Atomics.load(this.shm, stressDevWord(i) + StressDevStat[field]);
  }

  /** Importer i's exact count of payload violations of `kind` (its ring keeps only the last records). */
  kindCount(i: number, kind: StressViolationKind): number {
    return Atomics.load(this.shm, stressKindWord(i, kind));
  }

  /** Maps buffer b (anonymous, or a BAR export) and publishes it in the job table. */
  private async mapBuf(b: LiveBuf): Promise<void> {
    const i = this.bufs.indexOf(b);
    const w = stressBufWord(i);
    if (b.spec.kind === 'anon') {
      b.va = await this.mm.mmap({ length: b.spec.npages * PAGE_SIZE, prot: RW });
      b.vma = null;
    } else {
      const m = await this.exporter.mmap(this.mm, b.spec.npages);
      b.va = m.va;
      b.vma = m.vma;
    }
    b.history.push({ va: b.va, epoch: b.epoch });
    storeU64(this.shm, w + StressBuf.va, b.va);
    Atomics.store(this.shm, w + StressBuf.npages, b.spec.npages);
    Atomics.store(this.shm, w + StressBuf.writer, this.machine.device(`imp${b.spec.writer}`).shm.index);
    Atomics.store(this.shm, w + StressBuf.kind, b.spec.kind === 'anon' ? StressBufKind.Anon : StressBufKind.Bar);
    // Stored last: pairs with the Atomics.load(epoch) in workers/x_stress.ts pass().
    Atomics.store(this.shm, w + StressBuf.epoch, b.epoch);
  }

  /** Which buffer and page a VA belongs (or belonged) to. */
  locate(va: number): { buf: number; page: number; epoch: number } | null {
    for (let i = 0; i < this.bufs.length; i++) {
      for (const h of this.bufs[i].history) {
        if (va >= h.va && va < h.va + this.bufs[i].spec.npages * PAGE_SIZE) return { buf: i, page: Math.floor((va - h.va) / PAGE_SIZE), epoch: h.epoch };
      }
    }
    return null;
  }

  /** Applies one schedule operation. Returns null, or why the kernel refused or aborted it. */
  async apply(op: Op): Promise<string | null> {
    const b = this.bufs[op.buf];
    const start = b.va + op.page * PAGE_SIZE;
    const end = start + op.npages * PAGE_SIZE;
    const dev = `imp${op.dev}`;
    try {
      switch (op.kind) {
        case 'revoke':
          await this.exporter.revoke(b.vma!);
          return null;
        case 'slot-close':
          await this.exporter.barManager.unmapPage(this.exporter.pageOf(b.vma!, op.page));
          return null;
        case 'migrate-dev':
          if (this.gone.has(dev)) return 'target device torn down';
          await migrateToDevice(this.mm, start, end, this.kernel.devmem(dev));
          return null;
        case 'migrate-ram':
          await migrateToSystem(this.mm, start, end);
          return null;
        case 'munmap':
          return await this.replace(b);
        case 'mprotect':
          await this.mm.mprotect(start, end - start, PROT_READ);
          await new Promise((res) => setTimeout(res, 1));
          await this.mm.mprotect(start, end - start, RW);
          return null;
        case 'dontneed':
          await this.mm.madviseDontneed(start, end - start);
          return null;
        case 'notifier-insert':
          return await this.insertNotifier(start, end);
        case 'notifier-remove':
          await this.notifiers.splice(op.page % Math.max(1, this.notifiers.length), 1)[0]?.remove();
          return null;
        case 'inv-storm': {
          const n = b.spec.npages;
          await Promise.all(Array.from({ length: 8 * op.npages }, (_, k) => {
            const va = b.va + ((op.page + k * 5) % n) * PAGE_SIZE;
            return this.mm.revokeRange(va, va + PAGE_SIZE, this);
          }));
          return null;
        }
        case 'slow-device': {
          const ctl = this.machine.device(dev).shm.ctl;
          Atomics.store(ctl, DeviceCtl.invLagMs, Atomics.load(ctl, DeviceCtl.invLagMs) > 0 ? 0 : 1 + (op.page % 4));
          return null;
        }
        case 'iotlb-flush': {
          const dom = this.kernel.domain(dev);
          if (!dom || this.gone.has(dev)) return 'no IOMMU domain';
          await dom.flush([{ start: IOVA_BASE, end: IOVA_BASE + IOVA_PAGES * PAGE_SIZE }]);
          return null;
        }
      }
    } catch (e) {
      if (e instanceof DeviceError) return `aborted: ${e.message}`;
      if (e instanceof Error && 'code' in e) return `refused: ${e.message}`;
      throw e;
    }
  }

  /** munmap + mmap: the buffer gets a new VA and epoch (odd while it is replaced). */
  private async replace(b: LiveBuf): Promise<null> {
    const w = stressBufWord(this.bufs.indexOf(b));
    Atomics.store(this.shm, w + StressBuf.epoch, ++b.epoch);
    await this.mm.munmap(b.va, b.spec.npages * PAGE_SIZE);
    b.epoch++;
    await this.mapBuf(b);
    return null;
  }

  /** A passive subscriber (another driver's notifier): insert, then one readBegin that must not hang. */
  private async insertNotifier(start: number, end: number): Promise<string | null> {
    const sub = this.mm.notifiers.insert(start, end - start, {
      invalidate: (s, range, seq) => {
        if (!this.lock.tryLock()) {
          if (!range.blockable) return false;
          s.setSeq(seq);
          return true;
        }
        s.setSeq(seq);
        this.lock.unlock();
        return true;
      },
    }, 'stress notifier');
    this.notifiers.push(sub);
    const t = this.opts.ackTimeoutMs * 3;
    let timer: NodeJS.Timeout | undefined;
    const r = await Promise.race([sub.readBegin().then(() => 'ok'), new Promise<string>((res) => (timer = setTimeout(() => res('hang'), t)))]);
    clearTimeout(timer);
    return r === 'hang' ? `protocol: readBegin of a fresh notifier did not return within ${t} ms` : null;
  }

  /** Tears down a crashed or hung importer: its binding is closed (no more invalidations to it), its device-private pages come back to RAM. */
  async tearDown(name: string): Promise<number> {
    if (this.gone.has(name)) return 0;
    this.gone.add(name);
    const i = this.names.indexOf(name);
    await this.bindings[i].close().catch(() => undefined);
    // A dead device cannot flush its own TLB; its binding is gone, so nothing to flush.
    this.kernel.devmem(name).ownerFlush = null;
    let back = 0;
    for (const b of this.bufs) if (b.spec.kind === 'anon') back += await migrateToSystem(this.mm, b.va, b.va + b.spec.npages * PAGE_SIZE).catch(() => 0);
    return back;
  }

  async shutdown(): Promise<void> {
    this.stopStreaming();
    await this.machine.shutdown();
  }
}
