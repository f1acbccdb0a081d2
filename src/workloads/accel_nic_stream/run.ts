/**
 * RFC workload (3), use case [B]: the accelerator computes results into
 * its own memory and the NIC streams them out (SEND: a sink that
 * checksums every byte), with no bounce through system RAM.
 *
 *   p2p:    the result buffers are a device-special VMA each (BarExporter,
 *           read-only, NIC only); the NIC reads them by VA through the
 *           accelerator's BAR. At a seeded delay after a SEND starts
 *           the driver moves the buffer (BarExporter.revoke: invalidate the
 *           NIC, wait for its ack, copy to new pages, free the old ones);
 *           timers cannot fire under 1 ms, a SEND takes ~0.5 ms, so most
 *           moves land after their SEND (Revoker counts those during one).
 *           A BAR window smaller than the buffers adds LRU slot evictions.
 *           The NIC refaults and the stream stays byte-exact.
 *           With `evict: revoke` the driver revokes access instead
 *           (BarExporter.revokeAccess, dma-buf/VFIO style): the NIC is
 *           invalidated and its refault fails ENODEV, so the SEND fails;
 *           the driver restores access and sends the result again.
 *   bounce: accelerator -> system RAM (COPY_TO_VA into a staging buffer
 *           of the process) -> NIC: two copies of every result byte.
 *
 *   kernel                       acc                      nic
 *   ------                       ---                      ---
 *   COMPUTE(r, buf b) -------->  kernel into buf b
 *   [bounce: COPY_TO_VA(b -> staging b)]
 *                     <--------  CQE
 *   SEND(va of b) ------------------------------------->  DMA by VA, fnv1a
 *   (p2p, seeded) revoke(b) ---- invalidate ----------->  ack, refault
 *   COMPUTE(r + 1, buf b')       (overlaps the SEND)
 *                     <---------------------------------  CQE: checksum
 *   [Required: buffer b is recomputed only after its SEND completed and
 *    any revoke of it finished (the driver owns both sides)]
 *
 * After the stream, a CPU reference recomputes every result and its
 * FNV-1a; each must equal what the NIC's sink saw.
 */
import type { Completion } from '../../shm/ring.js';
import { PAGE_SIZE } from '../../shm/constants.js';
import { mulberry32 } from '../../hw/p2pdma.js';
import { ACC_F_INIT, ACC_OP_COMPUTE, ACC_OP_COPY_TO_VA, computeArgs } from '../../devices/accelerator_abi.js';
import { NIC_OP_PREFETCH, NIC_OP_SEND } from '../../devices/nic_abi.js';
import { accelNicRig, type AccelNicRig } from '../accel_nic_rig.js';
import { allocBuffers, type Buffers } from './buffers.js';
import { quiesce } from '../kernel_boot.js';
import { accelReference } from '../reference/accel.js';
import { modeledSeconds, processCpuMsSince, trafficTotals } from '../accounting.js';
import { baseline, invalidationSince, NO_BASELINE, stageSince, vaSince, type Baseline } from '../counter_baseline.js';
import { warmUp, WARM_ROUNDS } from './warmup.js';
import { fnv1aReference } from '../reference/checksum.js';
import type { Accounting, Check, WorkloadContext } from '../workload.js';
import type { AccelNicStreamWorkload } from './schema.js';

/** Seeded revoke delays, as a fraction of the expected SEND time. */
const DELAY_MIN = 0.1;
const DELAY_MAX = 0.6;

/** Seed of result r (distinct per result and per scenario seed). */
export function resultSeed(seed: number, r: number): number {
  return (Math.imul(seed, 1000003) + r) | 0;
}

interface RevokePlan {
  readonly result: number;
  readonly delayFrac: number;
}

/** Which results get a revoke, and when: seeded, at most one per result, never result 0 (it times the SEND). */
export function revokePlan(seed: number, results: number, revokes: number): RevokePlan[] {
  const rnd = mulberry32(seed ^ 0x5eed);
  const cands = Array.from({ length: Math.max(0, results - 1) }, (_, i) => i + 1);
  for (let i = cands.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [cands[i], cands[j]] = [cands[j], cands[i]];
  }
  return cands
    .slice(0, revokes)
    .sort((a, b) => a - b)
    .map((result) => ({ result, delayFrac: DELAY_MIN + rnd() * (DELAY_MAX - DELAY_MIN) }));
}

/**
 * The driver's buffer moves (p2p; evict: revoke — access revocations): at
 * most one of a buffer at a time; counts those that finished while the SEND
 * that was in flight when they started still was. Timers are its own,
 * cleared by stop().
 */
class Revoker {
  fired = 0;
  duringSend = 0;
  /** evict: revoke — SENDs the NIC could not finish (ENODEV) and sent again after the restore. */
  sendsRefused = 0;
  private error: unknown = null;
  private readonly revoking: (Promise<void> | undefined)[];
  /** The fault-ahead hints sent after moves (settle waits for them). */
  private readonly hints: Promise<unknown>[] = [];
  private readonly timers = new Set<NodeJS.Timeout>();

  constructor(
    private readonly bufs: Buffers,
    /** Result whose SEND is in flight from each buffer, or -1. */
    private readonly inFlight: readonly number[],
    /** evict: revoke (BarExporter.revokeAccess) instead of the RFC's move. */
    readonly revokeAccess: boolean,
    /** Called once a move of buffer b finished (not after a revocation): the driver's fault-ahead hint to the NIC. */
    private readonly moved: (b: number) => Promise<unknown>,
  ) {
    this.revoking = new Array(inFlight.length);
  }

  /** Moves buffer b (holding result r) now, unless a move of it is running. */
  fire(b: number, r: number): void {
    const ex = this.bufs.ex;
    if (this.revoking[b] || !ex) return;
    this.fired++;
    const atStart = this.inFlight[b] === r;
    const vma = this.bufs.exported[b].vma;
    this.revoking[b] = (this.revokeAccess ? ex.revokeAccess(vma) : ex.revoke(vma))
      .then(() => {
        if (atStart && this.inFlight[b] === r) this.duringSend++;
        if (!this.revokeAccess) this.hints.push(this.moved(b).catch((e: unknown) => void (this.error ??= e)));
      })
      .catch((e: unknown) => void (this.error ??= e))
      .finally(() => (this.revoking[b] = undefined));
  }

  /** Schedules fire(b, r) after `ms`; the returned cancel() says whether it had not fired yet. */
  later(b: number, r: number, ms: number): () => boolean {
    const tm = setTimeout(() => {
      this.timers.delete(tm);
      this.fire(b, r);
    }, ms);
    this.timers.add(tm);
    return () => {
      clearTimeout(tm);
      return this.timers.delete(tm);
    };
  }

  /** evict: revoke — whether buffer b's access is revoked now. */
  revoked(b: number): boolean {
    const e = this.bufs.exported[b];
    return this.revokeAccess && this.bufs.ex !== null && this.bufs.ex.revokedIn(e.vma, e.va, e.va + e.bytes);
  }

  /** evict: revoke — gives buffer b's access back (after any revocation of it in progress). */
  async restore(b: number): Promise<void> {
    await this.revoking[b];
    await this.bufs.ex!.restoreAccess(this.bufs.exported[b].vma);
  }

  /** The move of buffer b in progress, if any. */
  running(b: number): Promise<void> | undefined {
    return this.revoking[b];
  }

  stop(): void {
    for (const tm of this.timers) clearTimeout(tm);
    this.timers.clear();
  }

  /** Waits for every move; rethrows the first that failed. */
  async settle(): Promise<void> {
    await Promise.all(this.revoking);
    await Promise.all(this.hints);
    if (this.error) throw this.error;
  }
}

/**
 * The timed stream: COMPUTE result r into buffer r % buffers (after that
 * buffer's previous SEND and move finished), [bounce: COPY_TO_VA], SEND;
 * planned moves fire at their seeded fraction of the mean clean SEND time,
 * or, when the SEND ends first, right after it. Returns the checksums the
 * NIC's sink saw.
 */
async function stream(ctx: WorkloadContext, w: AccelNicStreamWorkload, rig: AccelNicRig, bufs: Buffers, plan: ReadonlyMap<number, RevokePlan>, rev: Revoker, inFlight: number[]): Promise<{ sent: number[]; wallMs: number; cpuMs: number }> {
  const { accQ, nicQ, runner } = rig;
  const sent = new Array<number>(w.results).fill(0);
  const sendDone: (Promise<void> | undefined)[] = new Array(w.buffers);
  const cleanSendMs: number[] = [];
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  for (let r = 0; r < w.results; r++) {
    const b = r % w.buffers;
    await sendDone[b];
    await rev.running(b);
    if (rev.revoked(b)) await rev.restore(b);
    await runner.run(accQ, { opcode: ACC_OP_COMPUTE, src: bufs.local(b), dst: 0, len: w.resultBytes, args: computeArgs({ iterations: w.iterations, seed: resultSeed(ctx.seed, r), publishEvery: 0, flags: ACC_F_INIT }) });
    if (!bufs.ex) await runner.run(accQ, { opcode: ACC_OP_COPY_TO_VA, src: bufs.local(b), dst: bufs.staging[b], len: w.resultBytes, args: [] });
    const s0 = performance.now();
    inFlight[b] = r;
    const p = plan.get(r);
    const sendCmd = { opcode: NIC_OP_SEND, src: bufs.sendVa(b), dst: 0, len: w.resultBytes, args: [] };
    // evict: revoke — a SEND refused by the revocation is sent again once access is restored.
    const resend = async (e: unknown): Promise<Completion> => {
      if (!(e instanceof Error) || !/ENODEV/.test(e.message) || !rev.revoked(b)) throw e;
      rev.sendsRefused++;
      await rev.restore(b);
      return runner.run(nicQ, sendCmd).catch(resend);
    };
    const send = runner.run(nicQ, sendCmd).catch(resend);
    const est = cleanSendMs.length > 0 ? cleanSendMs.reduce((a, x) => a + x, 0) / cleanSendMs.length : 1;
    const cancel = p ? rev.later(b, r, p.delayFrac * est) : null;
    sendDone[b] = send.then((c) => {
      inFlight[b] = -1;
      sent[r] = c.result;
      if (!p) cleanSendMs.push(performance.now() - s0);
      // A planned move whose delay outlived the SEND happens now, before
      // the buffer is recomputed (never while the accelerator writes it).
      if (cancel?.()) rev.fire(b, r);
    });
  }
  await Promise.all(sendDone);
  return { sent, wallMs: performance.now() - t0, cpuMs: processCpuMsSince(cpu0) };
}

/** The CPU reference, after the stream (not in the wall time): one line per result whose checksum differs. */
function mismatches(ctx: WorkloadContext, w: AccelNicStreamWorkload, sent: readonly number[]): string[] {
  const bad: string[] = [];
  for (let r = 0; r < w.results; r++) {
    const ref = accelReference(w.resultBytes / 4, resultSeed(ctx.seed, r), w.iterations).buffer;
    const want = fnv1aReference(new Uint8Array(ref.buffer));
    if (sent[r] !== want) bad.push(`result ${r}: the NIC sent checksum 0x${(sent[r] >>> 0).toString(16)}, reference 0x${(want >>> 0).toString(16)}`);
  }
  return bad;
}

/**
 * One accelerator's stream on `rig` (its accelerator queue, the rig's NIC):
 * the timed stream, then `afterStream` (wait for every other stream that
 * can still invalidate this NIC), then the accounting.
 */
export async function streamOne(ctx: WorkloadContext, w: AccelNicStreamWorkload, rig: AccelNicRig, afterStream: () => Promise<void>): Promise<Accounting> {
  const bounce = ctx.mode === 'bounce';
  let rev: Revoker | null = null;
  try {
    // Without a warm-up (a NIC group: its streams start at once) the counters are read whole, as before.
    const warmCommands = w.warmUp ? await warmUp(w, rig, bounce) : 0;
    const base = w.warmUp ? await baseline(ctx.machine, rig.kernel, [rig.acc, rig.nic], rig.runner.submitted) : NO_BASELINE;
    const recycled0 = bounce || !w.warmUp ? 0 : rig.kernel.bar(w.accelerator).recycled;
    const bufs = await allocBuffers(w, rig, bounce);
    const plan = new Map((bounce ? [] : revokePlan(ctx.seed, w.results, w.revokes)).map((p) => [p.result, p]));
    const inFlight = new Array<number>(w.buffers).fill(-1);
    // After a move the NIC's translations of the buffer are gone: it is told to fault them
    // in ahead (NIC_OP_PREFETCH), so the kernel maps the new pages while the accelerator
    // recomputes the buffer, not while the NIC waits at the start of its next SEND.
    const prefetch = (b: number) => rig.runner.run(rig.nicQ, { opcode: NIC_OP_PREFETCH, src: bufs.sendVa(b), dst: 0, len: w.resultBytes, args: [] });
    rev = new Revoker(bufs, inFlight, w.evict === 'revoke', prefetch);
    const { sent, wallMs, cpuMs } = await stream(ctx, w, rig, bufs, plan, rev, inFlight);
    rev.stop();
    await rev.settle();
    await afterStream();
    return await account(ctx, w, rig, bufs, { sent, wallMs, cpuMs, plan, rev, base, warmCommands, recycled: bufs.ex ? bufs.ex.barManager.recycled - recycled0 : 0 });
  } finally {
    rev?.stop();
  }
}

export async function runAccelNicStream(ctx: WorkloadContext, w: AccelNicStreamWorkload): Promise<Accounting> {
  const rig = await accelNicRig(ctx, w, w.queueDepth, ctx.mode === 'bounce');
  try {
    // With other streams on the process, their moves invalidate this NIC too: count once all are done.
    return await streamOne(ctx, w, rig, () => quiesce(ctx));
  } finally {
    await rig.close();
  }
}

/** The run's Accounting: traffic, invalidations, refaults, and the data and invalidation checks. */
async function account(ctx: WorkloadContext, w: AccelNicStreamWorkload, rig: AccelNicRig, bufs: Buffers, run: { sent: readonly number[]; wallMs: number; cpuMs: number; plan: ReadonlyMap<number, RevokePlan>; rev: Revoker; base: Baseline; warmCommands: number; recycled: number }): Promise<Accounting> {
  const { kernel, runner, acc, nic } = rig;
  const { ex } = bufs;
  const bounce = ex === null;
  const { wallMs, plan } = run;
  const revokesFired = run.rev.fired;
  const revokesDuringSend = run.rev.duringSend;
  const { revokeAccess, sendsRefused } = run.rev;
  const bad = mismatches(ctx, w, run.sent);
  const pages = w.resultBytes / PAGE_SIZE;
  // Relative to the counters after the warm-up (./warmup.ts): the window's figures only.
  const { base, recycled } = run;
  const nicVa = await vaSince(ctx.machine, nic, base);
  const accSt = stageSince(acc, base);
  const nicSt = stageSince(nic, base);
  const devices = [accSt, nicSt];
  const { ramBytes, p2pBytes } = trafficTotals(devices);
  const payloadBytes = w.results * w.resultBytes;
  const inv = invalidationSince(kernel, [w.nic, w.accelerator], base);
  // Pages the NIC had to fault in again after an invalidation took them (first touch excluded).
  const touched = Math.min(w.buffers, w.results) * pages;
  const refaultedPages = Math.max(0, nicVa.pagesFaulted - touched);
  const flows = bounce
    ? [
        { id: 'results-to-ram', src: w.accelerator, dst: 'ram', bytes: payloadBytes },
        { id: 'results-from-ram', src: 'ram', dst: w.nic, bytes: payloadBytes },
      ]
    : [{ id: 'results-p2p', src: w.accelerator, dst: w.nic, bytes: payloadBytes }];
  const checks: Check[] = [
    {
      name: 'stream byte-exact against the CPU reference',
      ok: bad.length === 0,
      detail: bad.length === 0 ? `${w.results} of ${w.results} results (${payloadBytes} bytes) checksum-equal` : `${bad.length} of ${w.results} result(s) differ:\n  ${bad.slice(0, 5).join('\n  ')}`,
    },
  ];
  if (!bounce && w.revokes > 0) {
    checks.push({
      name: 'invalidations survived',
      ok: revokesFired === plan.size && bad.length === 0 && inv.acked === inv.sent,
      detail: `${revokesFired} of ${plan.size} planned buffer ${revokeAccess ? `revocations done (${sendsRefused} SENDs refused with ENODEV and sent again after the restore)` : 'moves done'} (${revokesDuringSend} while their SEND was in flight), ${recycled} BAR slots recycled; the NIC acked ${inv.acked} of ${inv.sent} invalidation batches, redid ${nicVa.refaults} runs, refaulted ${refaultedPages} pages`,
    });
  }
  return {
    payloadBytes,
    ramBytes,
    bounceBytes: accSt.bytesToRam + nicSt.bytesFromRam,
    p2pBytes,
    hostInterventions: runner.submitted - base.submitted,
    invalidations: inv,
    refaults: refaultedPages,
    wallMs,
    // Process-wide: in a shared boot the other workloads' threads would count too.
    ...(ctx.boot ? {} : { cpuMs: run.cpuMs }),
    modeledSeconds: modeledSeconds(ctx.fabric, flows),
    devices,
    checks,
    extra: {
      results: `${w.results} x ${w.resultBytes} bytes, ${w.iterations} kernel iteration(s) each, ${w.buffers} buffers`,
      'warm-up (untimed, before the window)': w.warmUp ? `${run.warmCommands} commands: ${2 * WARM_ROUNDS} results of ${w.resultBytes} bytes through ${w.buffers >= 2 ? 'two buffers' : 'one buffer'} of their own, by this mode's own path (src/workloads/accel_nic_stream/warmup.ts), not counted here` : 'none (warmUp: false; always off with several streams)',
      [revokeAccess ? 'buffer revocations (revokeAccess)' : 'buffer moves (revoke)']: bounce ? 'n/a (bounce: results are staged in RAM)' : `${revokesFired} (${revokesDuringSend} during their SEND)`,
      sendsRefused,
      revokesFired,
      revokesDuringSend,
      'BAR slots recycled': recycled,
      'NIC page requests': `${nicVa.faults} (${nicVa.pagesFaulted} pages, ${refaultedPages} refaulted after an invalidation; ${nicVa.prefetchHits} answered ahead; ${nicVa.refaults} runs redone mid-transfer)`,
      'system RAM bytes for the stream': ramBytes,
    },
  };
}
