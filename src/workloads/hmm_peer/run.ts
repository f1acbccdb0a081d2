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
 *   [p2p] migrateToDevice ----> pages now device-private
 *   TRANSFORM_VA(buffer) -----> local (p2p) | DMA via RAM (bounce)
 *   SEND(buffer) ---------------------------------->  fault: peer addresses (p2p)
 *                                                     fnv1a == reference ?
 *   CPU stamps the first half --> migrate_to_ram ---> invalidate, ack
 *   SEND(buffer) ---------------------------------->  refault: half RAM, half peer
 *                                                     fnv1a == reference ?
 *   CPU reads it all back == reference ?
 *   [Required: every SEND equals the CPU reference of the buffer as it is
 *    at that moment]
 *
 * Bounce mode: no migration, the buffer stays in RAM; the accelerator
 * reads and writes it by DMA and the NIC reads what it wrote from RAM.
 * Payload: the first SEND (the accelerator's result); the second SEND is
 * the check after the migration back and is reported separately.
 */
import { PROT_READ, PROT_WRITE, type Mm } from '../../kernel/mm.js';
import { migrateToDevice } from '../../kernel/migrate.js';
import { PAGE_SIZE } from '../../shm/constants.js';
import { ACC_ARG_SEED, ACC_ARG_STAGE_PAGE, ACC_ARG_STAGE_PAGES, ACC_OP_TRANSFORM_VA } from '../../devices/accelerator_abi.js';
import { NIC_OP_SEND } from '../../devices/nic_abi.js';
import { accelInitReference, accelTransformReference } from '../reference/accel.js';
import { invalidationStats, modeledSeconds, stageTimes, trafficTotals, vaCounters } from '../accounting.js';
import { fnv1aReference } from '../reference/checksum.js';
import { accelNicRig, type AccelNicRig } from '../accel_nic_rig.js';
import type { Accounting, Check, StageTimes, WorkloadContext } from '../workload.js';
import type { HmmPeerWorkload } from './schema.js';

/** The 8-byte stamp the CPU writes at the start of page i when it touches it. */
function stamp(seed: number, i: number): Uint8Array {
  const s = new Int32Array([0x70c4ed00 ^ i, seed ^ Math.imul(i, 0x9e3779b1)]);
  return new Uint8Array(s.buffer);
}

const hex = (n: number) => `0x${(n >>> 0).toString(16)}`;

/** The timed part: migrate the buffer to the accelerator (p2p), TRANSFORM it in place by VA, then the NIC SENDs it. */
async function firstPass(ctx: WorkloadContext, w: HmmPeerWorkload, rig: AccelNicRig, va: number, ref: Int32Array): Promise<{ migratedIn: number; sum: number; want: number; wallMs: number; nic: StageTimes; acc: StageTimes; invSent: number }> {
  const { accQ, nicQ, kernel, mm, runner } = rig;
  const len = w.pages * PAGE_SIZE;
  const stage = rig.acc.mem!.allocContig(w.stagePages).start;
  const t0 = performance.now();
  const migratedIn = ctx.mode === 'bounce' ? 0 : await migrateToDevice(mm, va, va + len, kernel.devmem(w.accelerator));
  const args = [0, 0, 0];
  args[ACC_ARG_STAGE_PAGE] = stage;
  args[ACC_ARG_SEED] = ctx.seed;
  args[ACC_ARG_STAGE_PAGES] = w.stagePages;
  await runner.run(accQ, { opcode: ACC_OP_TRANSFORM_VA, src: va, dst: 0, len, args });
  const sum = (await runner.run(nicQ, { opcode: NIC_OP_SEND, src: va, dst: 0, len, args: [] })).result;
  const wallMs = performance.now() - t0;
  // The CPU reference, outside the timed window.
  accelTransformReference(ref, 0, ctx.seed);
  const want = fnv1aReference(new Uint8Array(ref.buffer));
  return { migratedIn, sum, want, wallMs, nic: stageTimes(rig.nic), acc: stageTimes(rig.acc), invSent: invalidationStats([kernel], [w.nic]).sent };
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

/** What the run saw, for its checks. */
interface Seen {
  readonly sum1: number;
  readonly want1: number;
  readonly sum2: number;
  readonly want2: number;
  /** Process memory read back by the CPU, the reference, and the first word where they differ (-1: none). */
  readonly back: Int32Array;
  readonly ref: Int32Array;
  readonly firstBad: number;
  readonly migratedIn: number;
  /** The NIC's traffic after the first SEND, and the second SEND's. */
  readonly nic1: StageTimes;
  readonly second: { readonly fromPeer: number; readonly fromRam: number };
  readonly kinds: { readonly ram: number; readonly devprivate: number };
  readonly inv2: number;
}

/** The data checks (both modes) and, in p2p mode, the checks that the peer path and the migration back were taken. */
function hmmChecks(w: HmmPeerWorkload, bounce: boolean, r: Seen): Check[] {
  const { sum1, want1, sum2, want2, back, ref, firstBad, migratedIn, nic1, second, kinds, inv2 } = r;
  const len = w.pages * PAGE_SIZE;
  const half = Math.floor(w.pages / 2);
  const checks: Check[] = [
    { name: 'first SEND matches the CPU reference', ok: sum1 === want1, detail: sum1 === want1 ? `${len} bytes transformed by the accelerator, checksum ${hex(want1)}` : `the NIC sent ${hex(sum1)}, reference ${hex(want1)}` },
    { name: 'SEND after the CPU touch matches the CPU reference', ok: sum2 === want2, detail: sum2 === want2 ? `checksum ${hex(want2)} with ${half} pages stamped by the CPU` : `the NIC sent ${hex(sum2)}, reference ${hex(want2)}` },
    { name: 'process memory equals the reference', ok: firstBad < 0, detail: firstBad < 0 ? `${len} bytes read back by the CPU` : `word ${firstBad} is ${hex(back[firstBad])}, reference ${hex(ref[firstBad])}` },
  ];
  if (!bounce) {
    checks.push(
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
    );
  }
  return checks;
}

export async function runHmmPeer(ctx: WorkloadContext, w: HmmPeerWorkload): Promise<Accounting> {
  const { machine } = ctx;
  const acc = machine.device(w.accelerator);
  const nic = machine.device(w.nic);
  const bounce = ctx.mode === 'bounce';
  const len = w.pages * PAGE_SIZE;
  const half = Math.floor(w.pages / 2);
  const rig = await accelNicRig(ctx, w, 4, true);
  const { nicQ, kernel, mm, runner } = rig;
  try {
    const va = await mm.mmap({ length: len, prot: PROT_READ | PROT_WRITE });
    // The process's data, written by the CPU (system RAM).
    const ref = new Int32Array(len / 4);
    accelInitReference(ref, ctx.seed);
    await mm.write(va, new Uint8Array(ref.buffer));

    const first = await firstPass(ctx, w, rig, va, ref);
    const { migratedIn, sum: sum1, want: want1, wallMs, nic: nic1, acc: acc1 } = first;
    const kinds = await touchHalf(ctx, w, mm, va, ref, half);
    const sum2 = (await runner.run(nicQ, { opcode: NIC_OP_SEND, src: va, dst: 0, len, args: [] })).result;
    const want2 = fnv1aReference(new Uint8Array(ref.buffer));
    const nic2 = stageTimes(nic);
    const inv2 = invalidationStats([kernel], [w.nic]).sent - first.invSent;
    const nicVa = await vaCounters(machine, nic);
    // Last: the CPU reads everything back (in p2p mode this migrates the rest home).
    const back = new Int32Array((await mm.read(va, len)).buffer);
    let firstBad = -1;
    for (let i = 0; i < back.length && firstBad < 0; i++) if (back[i] !== ref[i]) firstBad = i;

    const second = { fromPeer: nic2.bytesFromPeer - nic1.bytesFromPeer, fromRam: nic2.bytesFromRam - nic1.bytesFromRam };
    const checks = hmmChecks(w, bounce, { sum1, want1, sum2, want2, back, ref, firstBad, migratedIn, nic1, kinds, second, inv2 });

    const accSt = stageTimes(acc);
    const nicSt = stageTimes(nic);
    const devices = [accSt, nicSt];
    const { ramBytes, p2pBytes } = trafficTotals(devices);
    const flows = [
      { id: 'acc-from-ram', src: 'ram', dst: w.accelerator, bytes: accSt.bytesFromRam },
      { id: 'acc-to-ram', src: w.accelerator, dst: 'ram', bytes: accSt.bytesToRam },
      { id: 'nic-from-peer', src: w.accelerator, dst: w.nic, bytes: nicSt.bytesFromPeer },
      { id: 'nic-from-ram', src: 'ram', dst: w.nic, bytes: nicSt.bytesFromRam },
    ].filter((f) => f.bytes > 0);
    return {
      payloadBytes: len,
      ramBytes,
      // The accelerator's result staged in RAM for the NIC: written back by the accelerator, read by the first SEND.
      bounceBytes: acc1.bytesToRam + nic1.bytesFromRam,
      p2pBytes,
      hostInterventions: runner.submitted,
      invalidations: invalidationStats([kernel], [w.nic, w.accelerator]),
      refaults: Math.max(0, nicVa.pagesFaulted - w.pages),
      wallMs,
      modeledSeconds: modeledSeconds(ctx.fabric, flows),
      devices,
      checks,
      extra: {
        buffer: `${w.pages} pages (${len} bytes) of anonymous memory`,
        'migrated to the accelerator': migratedIn,
        'pages after the CPU touch': `${kinds.ram} RAM, ${kinds.devprivate} device-private`,
        'second SEND': `${second.fromPeer} bytes peer to peer, ${second.fromRam} bytes from RAM`,
        'NIC page requests': `${nicVa.faults} (${nicVa.pagesFaulted} pages)`,
      },
    };
  } finally {
    await rig.close();
  }
}
