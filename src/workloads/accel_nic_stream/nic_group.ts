/**
 * One NIC streaming from several accelerators (accel-nic-stream with
 * `nics:` fewer than `streams:`): the accelerators' streams run at once
 * through the NIC's one host queue and one binding to the process, each
 * with its own result buffers, revoke plan and seed; the NIC's figures
 * (its traffic, page requests, refaults) are counted once for the group.
 *
 *   acc0 --\
 *   acc2 ---+--> nic0      (streams: 4, nics: 2 -> acc i streams to nic i mod 2)
 *
 * Invariant: the group's accounting is read after every stream of the
 * run finished (the group's own barrier, then the run's quiesce), so
 * invalidations one stream's buffer moves sent to the shared NIC are all
 * acked before any stream counts them.
 */
import type { FabricFlow } from '../../hw/fabric.js';
import { ACC_HOST_QID } from '../../devices/accelerator_abi.js';
import { HostQueue } from '../../drivers/host_queue.js';
import { ImporterBinding } from '../../drivers/importer_binding.js';
import { PAGE_SIZE } from '../../shm/constants.js';
import { accelNicRig, type AccelNicRig } from '../accel_nic_rig.js';
import { invalidationStats, modeledSeconds, stageTimes, trafficTotals, vaCounters } from '../accounting.js';
import { capturingFabric, instanceSeed, mergeChecks, mergeExtra } from '../instances.js';
import { quiesce } from '../kernel_boot.js';
import { Barrier } from '../barrier.js';
import type { Accounting, WorkloadContext } from '../workload.js';
import { runAccelNicStream, streamOne } from './run.js';
import type { AccelNicStreamWorkload } from './schema.js';

/** The accelerators after the rig's first: a host queue each, bound to the process in bounce mode (COPY_TO_VA). */
async function moreAccelerators(ctx: WorkloadContext, w: AccelNicStreamWorkload, rig: AccelNicRig, names: readonly string[], bindings: ImporterBinding[]): Promise<AccelNicRig[]> {
  const subs: AccelNicRig[] = [];
  for (const a of names) {
    const acc = ctx.machine.device(a);
    const accQ = await HostQueue.create(ctx.machine, acc, ACC_HOST_QID, w.queueDepth);
    const accB = ctx.mode === 'bounce' ? await ImporterBinding.bind(rig.kernel, a, rig.mm) : null;
    if (accB) bindings.push(accB);
    subs.push({ ...rig, acc, accQ, accB });
  }
  return subs;
}

/** The streams of `accelerators` into w.nic at once; one Accounting for the group. */
export async function runNicGroup(ctx: WorkloadContext, w: AccelNicStreamWorkload, accelerators: readonly string[]): Promise<Accounting> {
  if (accelerators.length === 1) return runAccelNicStream(ctx, { ...w, accelerator: accelerators[0] });
  const k = accelerators.length;
  const rig = await accelNicRig(ctx, { accelerator: accelerators[0], nic: w.nic, process: w.process }, w.queueDepth * k, ctx.mode === 'bounce');
  const bindings: ImporterBinding[] = [];
  try {
    const subs = [rig, ...(await moreAccelerators(ctx, w, rig, accelerators.slice(1), bindings))];
    // Every stream of the group, then every instance of the run, before any counts.
    const group = new Barrier(k);
    let run: Promise<void> | null = null;
    const after = async () => {
      await group.pass();
      await (run ??= quiesce(ctx));
    };
    const flows: FabricFlow[][] = accelerators.map(() => []);
    const each = await Promise.all(
      accelerators.map((a, i) =>
        streamOne({ ...ctx, seed: instanceSeed(ctx.seed, i), fabric: capturingFabric(ctx.fabric, `a${i}`, flows, i) }, { ...w, accelerator: a }, subs[i], after).catch((e: unknown) => {
          void group.pass();
          throw e;
        }),
      ),
    );
    return await groupAccounting(ctx, w, rig, accelerators, each, flows.flat());
  } finally {
    for (const b of bindings.reverse()) await b.close();
    await rig.close();
  }
}

/** The streams' accountings merged, the NIC counted once. */
async function groupAccounting(ctx: WorkloadContext, w: AccelNicStreamWorkload, rig: AccelNicRig, accelerators: readonly string[], each: readonly Accounting[], flows: FabricFlow[]): Promise<Accounting> {
  const accs = accelerators.map((a) => stageTimes(ctx.machine.device(a)));
  const nic = stageTimes(rig.nic);
  const devices = [...accs, nic];
  const { ramBytes, p2pBytes } = trafficTotals(devices);
  const nicVa = await vaCounters(ctx.machine, rig.nic);
  // Pages the NIC faulted in again after an invalidation (each stream's first touch of its buffers excluded).
  const touched = accelerators.length * Math.min(w.buffers, w.results) * (w.resultBytes / PAGE_SIZE);
  const refaults = Math.max(0, nicVa.pagesFaulted - touched);
  return {
    payloadBytes: each.reduce((t, a) => t + a.payloadBytes, 0),
    ramBytes,
    bounceBytes: accs.reduce((t, a) => t + a.bytesToRam, 0) + nic.bytesFromRam,
    p2pBytes,
    hostInterventions: rig.runner.submitted,
    invalidations: invalidationStats([rig.kernel], [w.nic, ...accelerators]),
    refaults,
    wallMs: Math.max(...each.map((a) => a.wallMs)),
    modeledSeconds: modeledSeconds(ctx.fabric, flows),
    devices,
    checks: mergeChecks(accelerators.map((a) => `${a} -> ${w.nic}`), each.map((a) => a.checks), 'stream'),
    extra: {
      ...mergeExtra(each),
      'NIC page requests': `${nicVa.faults} (${nicVa.pagesFaulted} pages, ${refaults} refaulted after an invalidation; ${nicVa.prefetchHits} answered ahead; ${nicVa.refaults} runs redone mid-transfer)`,
      'system RAM bytes for the stream': ramBytes,
    },
  };
}
