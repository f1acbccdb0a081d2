/**
 * RFC workload (2), use case [B]: an accelerator runs a long seeded
 * computation and keeps a progress record (iteration, checksum so far) in
 * its own memory; a NIC polls that record and streams what it sees
 * (a monitoring packet stream: the MONITOR sample log).
 *
 *   p2p:    the record page is exported (BarExporter, read-only, NIC only)
 *           as a device-special VMA; the NIC reads it through the BAR,
 *           peer to peer, and the accelerator never notices.
 *   bounce: the accelerator also copies every update to a page of
 *           system RAM (ACC_F_MIRROR_VA: three DMAs in seqcount order),
 *           and the NIC polls that page.
 *
 *   kernel                     acc                              nic
 *   ------                     ---                              ---
 *   COMPUTE (warm-up, unwatched, timed)
 *   MONITOR(record VA, log VA) ------------------------------->  poll, retry torn
 *   COMPUTE(record) ---------> iterate; publish by seqcount      reads (p2p | RAM)
 *                              [bounce: + mirror to RAM]         log samples
 *                   <-------- CQE: checksum      <-------------  CQE: samples (done seen)
 *   COMPUTE (unwatched, timed)
 *   CPU reference; check every sample, monotonicity, the final checksum
 *
 * Slowdown = watched COMPUTE time / mean of the two unwatched ones - 1,
 * same buffer, seed and iterations, measured by the accelerator itself.
 * Invariant: samples are checked against the CPU reference pair by pair
 * (iteration -> checksum), so a torn record that slipped through shows as
 * a mismatch; a zeroed record (iteration 0, checksum 0) means "not started".
 */
import { BarExporter } from '../../drivers/bar_exporter.js';
import { PROT_READ, PROT_WRITE } from '../../kernel/mm.js';
import { PAGE_SIZE } from '../../shm/constants.js';
import type { Device } from '../../devices/machine.js';
import { ACC_F_INIT, ACC_OP_COMPUTE, computeArgs } from '../../devices/accelerator_abi.js';
import { MonitorSample, NIC_MON_MAX_SAMPLES, NIC_MON_PERIOD_US, NIC_OP_MONITOR, type NicCounters } from '../../devices/nic_abi.js';
import { accelNicRig, type AccelNicRig } from '../accel_nic_rig.js';
import { accelReference } from '../reference/accel.js';
import { invalidationStats, mean, modeledSeconds, stageTimes, trafficTotals, vaCounters } from '../accounting.js';
import { deviceQuery } from '../command_runner.js';
import type { Accounting, Check, WorkloadContext } from '../workload.js';
import type { AccelProgressWorkload } from './schema.js';

/** JIT warm-up COMPUTE before the timed runs (not measured). */
const WARMUP_ITERATIONS = 20;

/** One zeroed page of device memory; returns its byte offset. */
function zeroedPage(dev: Device): number {
  const off = dev.mem!.allocContig(1).start * PAGE_SIZE;
  dev.shm.mem!.fill(0, off, off + PAGE_SIZE);
  return off;
}

function monArgs(periodUs: number, max: number): number[] {
  const a = [0, 0];
  a[NIC_MON_PERIOD_US] = periodUs;
  a[NIC_MON_MAX_SAMPLES] = max;
  return a;
}

/** Where the watched COMPUTE publishes (local offset) and the VA the NIC polls: an exported page (p2p), or a private page mirrored to a RAM page of the process (bounce). */
async function placeRecord(w: AccelProgressWorkload, rig: AccelNicRig, bounce: boolean): Promise<{ recLocal: number; recVa: number }> {
  if (bounce) return { recLocal: zeroedPage(rig.acc), recVa: await rig.mm.mmap({ length: PAGE_SIZE, prot: PROT_READ | PROT_WRITE }) };
  const ex = new BarExporter(rig.kernel, w.accelerator, { importers: [w.nic], readOnly: true, requireIommu: false, cpuMappable: false });
  const m = await ex.mmap(rig.mm, 1);
  return { recLocal: ex.pageOf(m.vma, 0) * PAGE_SIZE, recVa: m.va };
}

interface ComputeRun {
  readonly result: number;
  readonly us: number;
}

/** The four COMPUTEs (warm-up, unwatched, watched by the NIC's MONITOR, unwatched again) and what the monitor logged. */
interface Runs {
  readonly warm: ComputeRun;
  readonly unwatchedA: ComputeRun;
  readonly watched: ComputeRun;
  readonly unwatchedB: ComputeRun;
  readonly samples: number;
  readonly log: Int32Array;
  /** Of the watched run only. */
  readonly wallMs: number;
  readonly interventions: number;
}

async function measure(ctx: WorkloadContext, w: AccelProgressWorkload, rig: AccelNicRig, bounce: boolean): Promise<Runs> {
  const { acc, accQ, nicQ, mm, runner } = rig;
  const buf = acc.mem!.allocContig(w.bufferBytes / PAGE_SIZE).start * PAGE_SIZE;
  const scratchRec = zeroedPage(acc);
  const { recLocal, recVa } = await placeRecord(w, rig, bounce);
  const logVa = await mm.mmap({ length: w.maxSamples * MonitorSample.kBytes, prot: PROT_READ | PROT_WRITE });
  const compute = async (rec: number, mirror: number | null, iterations: number): Promise<ComputeRun> => {
    const args = computeArgs({ iterations, seed: ctx.seed, publishEvery: w.publishEvery, flags: ACC_F_INIT, mirrorVa: mirror });
    const c = await runner.run(accQ, { opcode: ACC_OP_COMPUTE, src: buf, dst: rec, len: w.bufferBytes, args });
    const k = await deviceQuery(ctx.machine, acc, { op: 'acc-counters' });
    return { result: c.result, us: k.lastComputeUs };
  };
  const warm = await compute(scratchRec, null, Math.min(w.iterations, WARMUP_ITERATIONS));
  const unwatchedA = await compute(scratchRec, null, w.iterations);
  const submitted0 = runner.submitted;
  const t0 = performance.now();
  const mon = runner.run(nicQ, { opcode: NIC_OP_MONITOR, src: recVa, dst: logVa, len: 0, args: monArgs(w.pollUs, w.maxSamples) });
  const [cm, watched] = await Promise.all([mon, compute(recLocal, bounce ? recVa : null, w.iterations)]);
  const wallMs = performance.now() - t0;
  const interventions = runner.submitted - submitted0;
  const unwatchedB = await compute(scratchRec, null, w.iterations);
  const samples = cm.result;
  const log = new Int32Array((await mm.read(logVa, samples * MonitorSample.kBytes)).buffer);
  return { warm, unwatchedA, watched, unwatchedB, samples, log, wallMs, interventions };
}

/** The data checks: every sample a published (iteration, checksum) of the CPU reference, monotonic, ending at the done record; every COMPUTE's result the reference's. */
function progressChecks(w: AccelProgressWorkload, seed: number, runs: Runs, nicK: NicCounters): Check[] {
  const { samples, log } = runs;
  const ref = accelReference(w.bufferBytes / 4, seed, w.iterations);
  const final = ref.checksums[w.iterations] | 0;
  const published = (k: number) => k % w.publishEvery === 0 || k === w.iterations;
  const field = (i: number, f: number) => log[i * MonitorSample.kFieldCount + f];
  const bad: string[] = [];
  const regress: string[] = [];
  let last = 0;
  for (let i = 0; i < samples; i++) {
    const it = field(i, MonitorSample.iteration);
    const cs = field(i, MonitorSample.checksum);
    const ok = it === 0 ? cs === 0 : it > 0 && it <= w.iterations && published(it) && cs === (ref.checksums[it] | 0);
    if (!ok) bad.push(`sample ${i}: iteration ${it} checksum 0x${(cs >>> 0).toString(16)}, reference ${it >= 0 && it <= w.iterations ? '0x' + ref.checksums[it].toString(16) : '(no such iteration)'}`);
    if (it < last) regress.push(`sample ${i}: iteration ${it} after ${last}`);
    last = Math.max(last, it);
  }
  const lastIt = samples > 0 ? field(samples - 1, MonitorSample.iteration) : -1;
  const lastCs = samples > 0 ? field(samples - 1, MonitorSample.checksum) : 0;
  const results = [
    ['warm-up', runs.warm.result, ref.checksums[Math.min(w.iterations, WARMUP_ITERATIONS)] | 0],
    ['unwatched', runs.unwatchedA.result, final],
    ['watched', runs.watched.result, final],
    ['unwatched again', runs.unwatchedB.result, final],
  ] as const;
  const wrongResults = results.filter(([, got, want]) => got !== want).map(([what, got, want]) => `${what} COMPUTE returned 0x${(got >>> 0).toString(16)}, reference 0x${(want >>> 0).toString(16)}`);
  return [
    {
      name: 'the monitor never accepted a torn record',
      ok: bad.length === 0,
      detail: bad.length === 0 ? `${samples} samples, each an (iteration, checksum) pair of the CPU reference; ${nicK.torn} torn reads retried` : `${bad.length} of ${samples} samples are not a published record:\n  ${bad.slice(0, 5).join('\n  ')}`,
    },
    {
      name: 'observed progress is monotonic',
      ok: regress.length === 0 && nicK.nonMonotonic === 0,
      detail: regress.length === 0 && nicK.nonMonotonic === 0 ? `iterations 0 .. ${last} never went back` : `${regress.length} regressions in the log, ${nicK.nonMonotonic} counted by the NIC:\n  ${regress.slice(0, 5).join('\n  ')}`,
    },
    {
      name: 'final checksum matches the CPU reference',
      ok: wrongResults.length === 0 && lastIt === w.iterations && lastCs === final,
      detail:
        wrongResults.length > 0
          ? wrongResults.join('\n  ')
          : lastIt !== w.iterations || lastCs !== final
            ? `the monitor's last sample is iteration ${lastIt} checksum 0x${(lastCs >>> 0).toString(16)}; expected the done record, iteration ${w.iterations} checksum 0x${(final >>> 0).toString(16)}`
            : `0x${(final >>> 0).toString(16)} after ${w.iterations} iterations (device, monitor and CPU agree)`,
    },
  ];
}

export async function runAccelProgress(ctx: WorkloadContext, w: AccelProgressWorkload): Promise<Accounting> {
  const { machine } = ctx;
  const bounce = ctx.mode === 'bounce';
  const rig = await accelNicRig(ctx, w, 4, bounce);
  const { acc, nic, kernel, accB } = rig;
  try {
    const runs = await measure(ctx, w, rig, bounce);
    const { samples, wallMs, interventions, unwatchedA, unwatchedB, watched } = runs;
    const nicK = await deviceQuery(machine, nic, { op: 'nic-counters' });
    const checks = progressChecks(w, ctx.seed, runs, nicK);
    const accSt = stageTimes(acc);
    const nicSt = stageTimes(nic);
    const devices = [accSt, nicSt];
    const { ramBytes, p2pBytes } = trafficTotals(devices);
    const bounceBytes = accSt.bytesToRam + nicSt.bytesFromRam;
    const flows = [
      ...(bounce
        ? [
            { id: 'progress-to-ram', src: w.accelerator, dst: 'ram', bytes: accSt.bytesToRam },
            { id: 'progress-from-ram', src: 'ram', dst: w.nic, bytes: nicSt.bytesFromRam },
          ]
        : [{ id: 'progress-p2p', src: w.accelerator, dst: w.nic, bytes: nicSt.bytesFromPeer }]),
      { id: 'sample-log', src: w.nic, dst: 'ram', bytes: nicSt.bytesToRam },
    ].filter((f) => f.bytes > 0);
    const baselineUs = mean([unwatchedA.us, unwatchedB.us]);
    const slowdown = watched.us / baselineUs - 1;
    const nicVa = await vaCounters(machine, nic);
    const accVa = accB ? await vaCounters(machine, acc) : null;
    return {
      payloadBytes: samples * MonitorSample.kBytes,
      ramBytes,
      bounceBytes,
      p2pBytes,
      hostInterventions: interventions,
      invalidations: invalidationStats([kernel], [w.nic, w.accelerator]),
      refaults: nicVa.pagesRefaulted + (accVa?.pagesRefaulted ?? 0),
      wallMs,
      modeledSeconds: modeledSeconds(ctx.fabric, flows),
      devices,
      checks,
      extra: {
        iterations: w.iterations,
        'buffer': `${w.bufferBytes} bytes (${w.bufferBytes / 4} words)`,
        'samples (monitoring packets)': samples,
        'torn reads retried': nicK.torn,
        'progress updates': Math.ceil(w.iterations / w.publishEvery),
        'compute unwatched': `${(unwatchedA.us / 1000).toFixed(2)} ms, ${(unwatchedB.us / 1000).toFixed(2)} ms`,
        'compute watched': `${(watched.us / 1000).toFixed(2)} ms`,
        watchedMs: Number((watched.us / 1000).toFixed(3)),
        'accelerator slowdown from being watched': `${(slowdown * 100).toFixed(2)} % (noise floor: the two unwatched runs differ by ${((Math.abs(unwatchedA.us - unwatchedB.us) / baselineUs) * 100).toFixed(2)} %)`,
        slowdownPct: Number((slowdown * 100).toFixed(3)),
        'system RAM for monitoring': `${bounce ? PAGE_SIZE : 0} bytes of record page, ${bounceBytes} bytes of progress traffic (sample log: ${nicSt.bytesToRam} bytes, both modes)`,
        monitorRamBytes: bounce ? PAGE_SIZE + bounceBytes : 0,
      },
    };
  } finally {
    await rig.close();
  }
}
