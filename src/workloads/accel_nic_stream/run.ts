/**
 * RFC workload (3), use case [B]: the accelerator computes results into
 * its own memory and the NIC streams them out (SEND: a sink that
 * checksums every byte), with no bounce through system RAM.
 *
 *   p2p:    the result buffers are a device-special VMA each (BarExporter,
 *           read-only, NIC only); the NIC reads them by VA through the
 *           accelerator's BAR. While a SEND is in flight the driver moves
 *           the buffer (BarExporter.revoke: invalidate the NIC, wait for
 *           its ack, copy to new pages, free the old ones) at seeded
 *           delays; a BAR window smaller than the buffers adds LRU slot
 *           evictions. The NIC refaults and the stream stays byte-exact.
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
import { BarExporter } from '../../drivers/bar_exporter.js';
import { PROT_READ, PROT_WRITE } from '../../kernel/mm.js';
import type { Vma } from '../../kernel/vma.js';
import type { Completion } from '../../shm/ring.js';
import { PAGE_SIZE } from '../../shm/constants.js';
import { mulberry32 } from '../../hw/p2pdma.js';
import { ACC_F_INIT, ACC_OP_COMPUTE, ACC_OP_COPY_TO_VA } from '../../devices/accelerator_abi.js';
import { NIC_OP_SEND } from '../../devices/nic_abi.js';
import { accelNicRig } from '../accel_nic_rig.js';
import { accelReference } from '../reference/accel.js';
import { invalidationStats, modeledSeconds, stageTimes, trafficTotals, vaCounters } from '../accounting.js';
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

export async function runAccelNicStream(ctx: WorkloadContext, w: AccelNicStreamWorkload): Promise<Accounting> {
  const { machine } = ctx;
  const acc = machine.device(w.accelerator);
  const nic = machine.device(w.nic);
  const bounce = ctx.mode === 'bounce';
  const pages = w.resultBytes / PAGE_SIZE;
  const rig = await accelNicRig(ctx, w, w.queueDepth, bounce);
  const { accQ, nicQ, kernel, mm, runner } = rig;
  const timers = new Set<NodeJS.Timeout>();
  try {
    // p2p: exported buffers (their device pages move on revoke: ask pageOf each time).
    // bounce: private device buffers + RAM staging buffers of the process.
    const ex = bounce ? null : new BarExporter(kernel, w.accelerator, { importers: [w.nic], readOnly: true, requireIommu: false, cpuMappable: false });
    const exported: { va: number; vma: Vma }[] = [];
    const local: number[] = [];
    const staging: number[] = [];
    for (let b = 0; b < w.buffers; b++) {
      if (ex) exported.push(await ex.mmap(mm, pages));
      else {
        local.push(acc.mem!.allocContig(pages).start * PAGE_SIZE);
        staging.push(await mm.mmap({ length: w.resultBytes, prot: PROT_READ | PROT_WRITE }));
      }
    }
    const bufLocal = (b: number) => (ex ? ex.pageOf(exported[b].vma, 0) * PAGE_SIZE : local[b]);
    const sendVa = (b: number) => (ex ? exported[b].va : staging[b]);

    const plan = new Map((bounce ? [] : revokePlan(ctx.seed, w.results, w.revokes)).map((p) => [p.result, p]));
    const sent = new Array<number>(w.results).fill(0);
    const sendDone: (Promise<void> | undefined)[] = new Array(w.buffers);
    const revoking: (Promise<void> | undefined)[] = new Array(w.buffers);
    const inFlight = new Array<number>(w.buffers).fill(-1);
    const cleanSendMs: number[] = [];
    let revokesFired = 0;
    let revokesDuringSend = 0;
    let revokeErrors: unknown = null;
    const revokeAccess = w.evict === 'revoke';
    /** evict: revoke — SENDs the NIC could not finish (ENODEV) and sent again after the restore. */
    let sendsRefused = 0;

    const fireRevoke = (b: number, r: number) => {
      if (revoking[b] || !ex) return;
      revokesFired++;
      const atStart = inFlight[b] === r;
      revoking[b] = (revokeAccess ? ex.revokeAccess(exported[b].vma) : ex.revoke(exported[b].vma))
        .then(() => {
          if (atStart && inFlight[b] === r) revokesDuringSend++;
        })
        .catch((e: unknown) => void (revokeErrors ??= e))
        .finally(() => (revoking[b] = undefined));
    };

    const t0 = performance.now();
    for (let r = 0; r < w.results; r++) {
      const b = r % w.buffers;
      await sendDone[b];
      await revoking[b];
      if (revokeAccess && ex!.revokedIn(exported[b].vma, exported[b].va, exported[b].va + w.resultBytes)) await ex!.restoreAccess(exported[b].vma);
      await runner.run(accQ, { opcode: ACC_OP_COMPUTE, src: bufLocal(b), dst: 0, len: w.resultBytes, args: [w.iterations, resultSeed(ctx.seed, r), 0, ACC_F_INIT] });
      if (bounce) await runner.run(accQ, { opcode: ACC_OP_COPY_TO_VA, src: bufLocal(b), dst: staging[b], len: w.resultBytes, args: [] });
      const s0 = performance.now();
      inFlight[b] = r;
      const p = plan.get(r);
      const sendCmd = { opcode: NIC_OP_SEND, src: sendVa(b), dst: 0, len: w.resultBytes, args: [] };
      // evict: revoke — a SEND refused by the revocation is sent again once access is restored.
      const resend = async (e: unknown): Promise<Completion> => {
        if (!revokeAccess || !(e instanceof Error) || !/ENODEV/.test(e.message) || !ex!.revokedIn(exported[b].vma, exported[b].va, exported[b].va + w.resultBytes)) throw e;
        sendsRefused++;
        await revoking[b];
        await ex!.restoreAccess(exported[b].vma);
        return runner.run(nicQ, sendCmd).catch(resend);
      };
      const send = runner.run(nicQ, sendCmd).catch(resend);
      let tm: NodeJS.Timeout | null = null;
      if (p) {
        const est = cleanSendMs.length > 0 ? cleanSendMs.reduce((a, x) => a + x, 0) / cleanSendMs.length : 1;
        tm = setTimeout(() => {
          timers.delete(tm!);
          tm = null;
          fireRevoke(b, r);
        }, p.delayFrac * est);
        timers.add(tm);
      }
      sendDone[b] = send.then((c) => {
        inFlight[b] = -1;
        sent[r] = c.result;
        if (!p) cleanSendMs.push(performance.now() - s0);
        // A planned move whose delay outlived the SEND happens now, before
        // the buffer is recomputed (never while the accelerator writes it).
        if (tm) {
          clearTimeout(tm);
          timers.delete(tm);
          tm = null;
          fireRevoke(b, r);
        }
      });
    }
    await Promise.all(sendDone);
    const wallMs = performance.now() - t0;
    for (const tm of timers) clearTimeout(tm);
    await Promise.all(revoking);
    if (revokeErrors) throw revokeErrors;

    // CPU reference, after the stream (not in the wall time).
    const bad: string[] = [];
    for (let r = 0; r < w.results; r++) {
      const ref = accelReference(w.resultBytes / 4, resultSeed(ctx.seed, r), w.iterations).buffer;
      const want = fnv1aReference(new Uint8Array(ref.buffer));
      if (sent[r] !== want) bad.push(`result ${r}: the NIC sent checksum 0x${(sent[r] >>> 0).toString(16)}, reference 0x${(want >>> 0).toString(16)}`);
    }

    const nicVa = await vaCounters(machine, nic);
    const accSt = stageTimes(acc);
    const nicSt = stageTimes(nic);
    const devices = [accSt, nicSt];
    const { ramBytes, p2pBytes } = trafficTotals(devices);
    const payloadBytes = w.results * w.resultBytes;
    const inv = invalidationStats([kernel], [w.nic, w.accelerator]);
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
        detail: `${revokesFired} of ${plan.size} planned buffer ${revokeAccess ? `revocations done (${sendsRefused} SENDs refused with ENODEV and sent again after the restore)` : 'moves done'} (${revokesDuringSend} while their SEND was in flight), ${ex!.barManager.recycled} BAR slots recycled; the NIC acked ${inv.acked} of ${inv.sent} invalidation batches, redid ${nicVa.refaults} runs, refaulted ${refaultedPages} pages`,
      });
    }
    return {
      payloadBytes,
      ramBytes,
      bounceBytes: accSt.bytesToRam + nicSt.bytesFromRam,
      p2pBytes,
      hostInterventions: runner.submitted,
      invalidations: inv,
      refaults: refaultedPages,
      wallMs,
      modeledSeconds: modeledSeconds(ctx.fabric, flows),
      devices,
      checks,
      extra: {
        results: `${w.results} x ${w.resultBytes} bytes, ${w.iterations} kernel iteration(s) each, ${w.buffers} buffers`,
        [revokeAccess ? 'buffer revocations (revokeAccess)' : 'buffer moves (revoke)']: bounce ? 'n/a (bounce: results are staged in RAM)' : `${revokesFired} (${revokesDuringSend} during their SEND)`,
        sendsRefused,
        revokesFired,
        revokesDuringSend,
        'BAR slots recycled': ex ? ex.barManager.recycled : 0,
        'NIC page requests': `${nicVa.faults} (${nicVa.pagesFaulted} pages, ${refaultedPages} refaulted after an invalidation; ${nicVa.refaults} runs redone mid-transfer)`,
        'system RAM bytes for the stream': ramBytes,
      },
    };
  } finally {
    for (const tm of timers) clearTimeout(tm);
    await rig.close();
  }
}
