/**
 * The RFC's HMM path (patch 4/5): a process's anonymous buffer is
 * migrated to the accelerator as device-private memory; the accelerator
 * transforms it in place (its own pages: local copies); the NIC streams
 * it by VA, and hmmRangeFault hands the NIC *peer* addresses of
 * accelerator memory (DevMem.p2pMap through the BAR window) instead of
 * migrating it back. Then the CPU touches half of the buffer: those pages
 * migrate back to RAM (migrate_to_ram), the NIC is invalidated, and its
 * next SEND refaults them to system RAM addresses.
 *
 *   kernel / CPU                acc                   nic
 *   ------------                ---                   ---
 *   CPU writes the buffer (RAM)
 *   warm-up (untimed): this mode's path on a 64-page buffer, unmapped (./warmup.ts)
 *   per chunk of chunkPages (the next chunk migrates while acc transforms this one):
 *     [p2p] migrateToDevice --> pages now device-private, translations posted
 *     TRANSFORM_VA(chunk) ----> local (p2p) | DMA via RAM (bounce)
 *   SEND(buffer) ---------------------------------->  fault: peer addresses (p2p)
 *                                                     fnv1a == reference ?
 *   CPU stamps the first half --> migrate_to_ram ---> invalidate, ack
 *   SEND(buffer) ---------------------------------->  refault: half RAM, half peer
 *                                                     fnv1a == reference ?
 *   CPU reads it all back == reference ?
 *   [Required: every SEND equals the CPU reference of the buffer as it is
 *    at that moment]
 *
 * With `importers: N`, N NICs are bound to the process and SEND the one
 * buffer at once (each checked against the reference on its own): the
 * migration back invalidates all N (one broadcast fans out to N workers)
 * and each refaults.
 *
 * Bounce mode: no migration, the buffer stays in RAM; the accelerator
 * reads and writes it by DMA and the NIC reads what it wrote from RAM.
 * Payload: the first SEND (the accelerator's result); the second SEND is
 * the check after the migration back and is reported separately.
 */
import { PROT_READ, PROT_WRITE, type Mm } from '../../kernel/mm.js';
import { PAGE_SIZE } from '../../shm/constants.js';
import { NIC_OP_SEND } from '../../devices/nic_abi.js';
import { accelInitReference, accelTransformReference } from '../reference/accel.js';
import { modeledSeconds, processCpuMsSince, trafficTotals, type VaCounters } from '../accounting.js';
import { WARM_PAGES, warmBuffer } from './warmup.js';
import { baseline, invalidationSince, stageSince, vaSince, type Baseline } from '../counter_baseline.js';
import { migrateAndTransform } from './pipeline.js';
import { fnv1aReference } from '../reference/checksum.js';
import { accelNicRig, type AccelNicRig } from '../accel_nic_rig.js';
import type { Accounting, Check, StageTimes, WorkloadContext } from '../workload.js';
import type { HmmPeerWorkload } from './schema.js';
import type { Device } from '../../devices/machine.js';
import { HostQueue } from '../../drivers/host_queue.js';
import { ImporterBinding } from '../../drivers/importer_binding.js';
import { NIC_HOST_QID } from '../../devices/nic_abi.js';
import { instanceNames, mergeChecks } from '../instances.js';

/** The importers: every NIC reading the buffer, its host queue, and (past the rig's first) its binding. */
interface Importers {
  readonly names: readonly string[];
  readonly devs: readonly Device[];
  readonly queues: readonly HostQueue[];
  close(): Promise<void>;
}

/** The rig's NIC plus the other importers, each with a host queue and bound to the process. */
async function importers(ctx: WorkloadContext, w: HmmPeerWorkload, rig: AccelNicRig): Promise<Importers> {
  const names = instanceNames(w.nic, w.importers);
  const devs = names.map((n) => ctx.machine.device(n));
  const queues = [rig.nicQ];
  const bindings: ImporterBinding[] = [];
  for (const d of devs.slice(1)) {
    queues.push(await HostQueue.create(ctx.machine, d, NIC_HOST_QID, 4));
    bindings.push(await ImporterBinding.bind(rig.kernel, d.spec.name, rig.mm));
  }
  return {
    names,
    devs,
    queues,
    async close() {
      for (const b of bindings.reverse()) await b.close();
    },
  };
}

/** Every importer SENDs the buffer at once; the checksums each saw. */
async function sendAll(rig: AccelNicRig, imp: Importers, va: number, len: number): Promise<number[]> {
  return Promise.all(imp.queues.map(async (q) => (await rig.runner.run(q, { opcode: NIC_OP_SEND, src: va, dst: 0, len, args: [] })).result));
}

/** The 8-byte stamp the CPU writes at the start of page i when it touches it. */
function stamp(seed: number, i: number): Uint8Array {
  const s = new Int32Array([0x70c4ed00 ^ i, seed ^ Math.imul(i, 0x9e3779b1)]);
  return new Uint8Array(s.buffer);
}

const hex = (n: number) => `0x${(n >>> 0).toString(16)}`;

/** The timed part: migrate the buffer to the accelerator (p2p) and TRANSFORM it in place by VA, chunk by chunk, then the NICs SEND it. */
async function firstPass(ctx: WorkloadContext, w: HmmPeerWorkload, rig: AccelNicRig, imp: Importers, va: number, ref: Int32Array, warm: Warm): Promise<{ migratedIn: number; sums: number[]; want: number; wallMs: number; cpuMs: number; nics: StageTimes[]; acc: StageTimes; invSent: number[] }> {
  const { kernel } = rig;
  const { stage, base } = warm;
  const len = w.pages * PAGE_SIZE;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const migratedIn = await migrateAndTransform(ctx, w, rig, va, w.pages, stage);
  const sums = await sendAll(rig, imp, va, len);
  const wallMs = performance.now() - t0;
  const cpuMs = processCpuMsSince(cpu0);
  // The CPU reference, outside the timed window.
  accelTransformReference(ref, 0, ctx.seed);
  const want = fnv1aReference(new Uint8Array(ref.buffer));
  return { migratedIn, sums, want, wallMs, cpuMs, nics: imp.devs.map((d) => stageSince(d, base)), acc: stageSince(rig.acc, base), invSent: imp.names.map((n) => invalidationSince(kernel, [n], base).sent) };
}

/** The staging area both passes use, and the counters after the warm-up. */
interface Warm {
  readonly stage: number;
  readonly base: Baseline;
}

/** This mode's path once on a small buffer of its own, untimed (./warmup.ts: fresh device workers compile their code); then the baseline. */
async function warmUp(ctx: WorkloadContext, w: HmmPeerWorkload, rig: AccelNicRig, imp: Importers): Promise<Warm> {
  const stage = rig.acc.mem!.allocContig(w.stagePages).start;
  if (w.warmUp) {
    const b = await warmBuffer(rig.mm);
    await migrateAndTransform(ctx, w, rig, b.va, WARM_PAGES, stage);
    await sendAll(rig, imp, b.va, WARM_PAGES * PAGE_SIZE);
    await b.unmap();
  }
  return { stage, base: await baseline(ctx.machine, rig.kernel, [rig.acc, ...imp.devs], rig.runner.submitted) };
}

/** The CPU stamps the first `half` pages (device-private pages migrate back to RAM); returns where the pages are afterwards. */
async function touchHalf(ctx: WorkloadContext, w: HmmPeerWorkload, mm: Mm, va: number, ref: Int32Array, half: number): Promise<{ ram: number; devprivate: number; other: number }> {
  for (let i = 0; i < half; i++) {
    const s = stamp(ctx.seed, i);
    await mm.write(va + i * PAGE_SIZE, s);
    new Uint8Array(ref.buffer).set(s, i * PAGE_SIZE);
  }
  const kinds = { ram: 0, devprivate: 0, other: 0 };
  for (let i = 0; i < w.pages; i++) {
    const k = mm.pt.get(va / PAGE_SIZE + i)?.kind;
    if (k === 'ram' || k === 'devprivate') kinds[k]++;
    else kinds.other++;
  }
  return kinds;
}

/** What one importer saw: its checksums, its traffic after the first SEND and in the second, its invalidations after the touch. */
interface NicSeen {
  readonly sum1: number;
  readonly sum2: number;
  readonly nic1: StageTimes;
  readonly second: { readonly fromPeer: number; readonly fromRam: number };
  readonly inv2: number;
}

/** What the run saw of the buffer, for its checks. */
interface Seen {
  readonly want1: number;
  readonly want2: number;
  /** Process memory read back by the CPU, the reference, and the first word where they differ (-1: none). */
  readonly back: Int32Array;
  readonly ref: Int32Array;
  readonly firstBad: number;
  readonly migratedIn: number;
  readonly kinds: { readonly ram: number; readonly devprivate: number };
}

/** One importer's checks: its SENDs against the reference (both modes) and, in p2p mode, that it read peer addresses, was invalidated and refaulted. */
function nicChecks(w: HmmPeerWorkload, bounce: boolean, r: Seen, n: NicSeen): Check[] {
  const { want1, want2, migratedIn, kinds } = r;
  const { sum1, sum2, nic1, second, inv2 } = n;
  const len = w.pages * PAGE_SIZE;
  const half = Math.floor(w.pages / 2);
  const checks: Check[] = [
    { name: 'first SEND matches the CPU reference', ok: sum1 === want1, detail: sum1 === want1 ? `${len} bytes transformed by the accelerator, checksum ${hex(want1)}` : `the NIC sent ${hex(sum1)}, reference ${hex(want1)}` },
    { name: 'SEND after the CPU touch matches the CPU reference', ok: sum2 === want2, detail: sum2 === want2 ? `checksum ${hex(want2)} with ${half} pages stamped by the CPU` : `the NIC sent ${hex(sum2)}, reference ${hex(want2)}` },
  ];
  if (bounce) return checks;
  return [
    ...checks,
    {
      name: 'the NIC read accelerator memory at peer addresses',
      ok: migratedIn === w.pages && nic1.bytesFromPeer === len && nic1.bytesFromRam === 0,
      detail: `${migratedIn} of ${w.pages} pages migrated to ${w.accelerator}; first SEND: ${nic1.bytesFromPeer} bytes peer to peer, ${nic1.bytesFromRam} from RAM`,
    },
    {
      name: 'CPU touch migrated half back; the NIC was invalidated and refaulted to RAM',
      ok: kinds.ram === half && kinds.devprivate === w.pages - half && second.fromRam === half * PAGE_SIZE && second.fromPeer === (w.pages - half) * PAGE_SIZE && inv2 > 0,
      detail: `after the touch ${kinds.ram} pages in RAM, ${kinds.devprivate} device-private; ${inv2} invalidation batches to the NIC; second SEND: ${second.fromRam} bytes from RAM, ${second.fromPeer} peer to peer`,
    },
  ];
}

/** The checks: every importer's (one line per check naming any importer that failed, when there are several), then the process memory. */
function hmmChecks(w: HmmPeerWorkload, bounce: boolean, r: Seen, names: readonly string[], nics: readonly NicSeen[]): Check[] {
  const len = w.pages * PAGE_SIZE;
  const { back, ref, firstBad } = r;
  const each = nics.map((n) => nicChecks(w, bounce, r, n));
  const perNic = each.length === 1 ? each[0] : mergeChecks(names, each, 'importer');
  const memory: Check = { name: 'process memory equals the reference', ok: firstBad < 0, detail: firstBad < 0 ? `${len} bytes read back by the CPU` : `word ${firstBad} is ${hex(back[firstBad])}, reference ${hex(ref[firstBad])}` };
  // Single importer: the order the checks always had.
  return [...perNic.slice(0, 2), memory, ...perNic.slice(2)];
}

/** After the first pass: the CPU touches half the buffer, every importer SENDs it again, then the CPU reads it all back. */
async function secondPass(ctx: WorkloadContext, w: HmmPeerWorkload, rig: AccelNicRig, imp: Importers, va: number, ref: Int32Array, first: Awaited<ReturnType<typeof firstPass>>, base: Baseline): Promise<{ seen: Seen; nics: NicSeen[] }> {
  const { mm, kernel } = rig;
  const len = w.pages * PAGE_SIZE;
  const kinds = await touchHalf(ctx, w, mm, va, ref, Math.floor(w.pages / 2));
  const sums2 = await sendAll(rig, imp, va, len);
  const want2 = fnv1aReference(new Uint8Array(ref.buffer));
  const nics = imp.devs.map((d, i): NicSeen => {
    const nic2 = stageSince(d, base);
    const nic1 = first.nics[i];
    return { sum1: first.sums[i], sum2: sums2[i], nic1, second: { fromPeer: nic2.bytesFromPeer - nic1.bytesFromPeer, fromRam: nic2.bytesFromRam - nic1.bytesFromRam }, inv2: invalidationSince(kernel, [imp.names[i]], base).sent - first.invSent[i] };
  });
  // Last: the CPU reads everything back (in p2p mode this migrates the rest home).
  const back = new Int32Array((await mm.read(va, len)).buffer);
  let firstBad = -1;
  for (let i = 0; i < back.length && firstBad < 0; i++) if (back[i] !== ref[i]) firstBad = i;
  return { seen: { want1: first.want, want2, back, ref, firstBad, migratedIn: first.migratedIn, kinds }, nics };
}

export async function runHmmPeer(ctx: WorkloadContext, w: HmmPeerWorkload): Promise<Accounting> {
  const { machine } = ctx;
  const bounce = ctx.mode === 'bounce';
  const len = w.pages * PAGE_SIZE;
  const rig = await accelNicRig(ctx, { accelerator: w.accelerator, nic: instanceNames(w.nic, w.importers)[0], process: w.process }, 4, true);
  let imp: Importers | null = null;
  try {
    imp = await importers(ctx, w, rig);
    const va = await rig.mm.mmap({ length: len, prot: PROT_READ | PROT_WRITE });
    // The process's data, written by the CPU (system RAM).
    const ref = new Int32Array(len / 4);
    accelInitReference(ref, ctx.seed);
    await rig.mm.write(va, new Uint8Array(ref.buffer));

    const warm = await warmUp(ctx, w, rig, imp);
    const first = await firstPass(ctx, w, rig, imp, va, ref, warm);
    const { seen, nics } = await secondPass(ctx, w, rig, imp, va, ref, first, warm.base);
    const nicVa = await Promise.all(imp.devs.map((d) => vaSince(machine, d, warm.base)));
    const checks = hmmChecks(w, bounce, seen, imp.names, nics);
    return hmmAccounting(ctx, w, { rig, imp, first, seen, nics, nicVa, checks, base: warm.base });
  } finally {
    await imp?.close();
    await rig.close();
  }
}

/** The run's Accounting: the accelerator's and every importer's traffic, priced together. */
function hmmAccounting(ctx: WorkloadContext, w: HmmPeerWorkload, r: { rig: AccelNicRig; imp: Importers; first: Awaited<ReturnType<typeof firstPass>>; seen: Seen; nics: readonly NicSeen[]; nicVa: readonly VaCounters[]; checks: Check[]; base: Baseline }): Accounting {
  const { rig, imp, first, seen, nicVa, checks, base } = r;
  const len = w.pages * PAGE_SIZE;
  const accSt = stageSince(rig.acc, base);
  const nicSts = imp.devs.map((d) => stageSince(d, base));
  const devices = [accSt, ...nicSts];
  const { ramBytes, p2pBytes } = trafficTotals(devices);
  const one = imp.names.length === 1;
  const flows = [
    { id: 'acc-from-ram', src: 'ram', dst: w.accelerator, bytes: accSt.bytesFromRam },
    { id: 'acc-to-ram', src: w.accelerator, dst: 'ram', bytes: accSt.bytesToRam },
    ...imp.names.flatMap((n, i) => [
      { id: one ? 'nic-from-peer' : `${n}-from-peer`, src: w.accelerator, dst: n, bytes: nicSts[i].bytesFromPeer },
      { id: one ? 'nic-from-ram' : `${n}-from-ram`, src: 'ram', dst: n, bytes: nicSts[i].bytesFromRam },
    ]),
  ].filter((f) => f.bytes > 0);
  const { kinds } = seen;
  const sumOf = (f: (n: NicSeen) => number) => r.nics.reduce((t, n) => t + f(n), 0);
  const faults = nicVa.reduce((t, v) => t + v.faults, 0);
  const pagesFaulted = nicVa.reduce((t, v) => t + v.pagesFaulted, 0);
  return {
    // Every importer's first SEND carries the accelerator's result.
    payloadBytes: len * imp.names.length,
    ramBytes,
    // The accelerator's result staged in RAM for the NICs: written back by the accelerator, read by the first SENDs.
    bounceBytes: first.acc.bytesToRam + first.nics.reduce((t, n) => t + n.bytesFromRam, 0),
    p2pBytes,
    hostInterventions: rig.runner.submitted - base.submitted,
    invalidations: invalidationSince(rig.kernel, [...imp.names, w.accelerator], base),
    refaults: nicVa.reduce((t, v) => t + Math.max(0, v.pagesFaulted - w.pages), 0),
    wallMs: first.wallMs,
    // Every thread of the process in the window (Accounting.cpuMs); process-wide, so not with a shared boot's other workloads beside it.
    ...(ctx.boot ? {} : { cpuMs: first.cpuMs }),
    modeledSeconds: modeledSeconds(ctx.fabric, flows),
    devices,
    checks,
    extra: {
      buffer: `${w.pages} pages (${len} bytes) of anonymous memory`,
      ...(one ? {} : { importers: `${imp.names.length} NICs (${imp.names[0]} .. ${imp.names[imp.names.length - 1]}) read the one buffer at once` }),
      'warm-up (untimed, before the window)': w.warmUp ? `${WARM_PAGES} pages of another buffer through this mode's own path (src/workloads/hmm_peer/warmup.ts), not counted here` : 'none (warmUp: false)',
      'migrated to the accelerator': first.migratedIn,
      'pages after the CPU touch': `${kinds.ram} RAM, ${kinds.devprivate} device-private`,
      [one ? 'second SEND' : 'second SENDs (all NICs)']: `${sumOf((n) => n.second.fromPeer)} bytes peer to peer, ${sumOf((n) => n.second.fromRam)} bytes from RAM`,
      'NIC page requests': `${faults} (${pagesFaulted} pages)`,
    },
  };
}
