// p2p mode: before the stream, the camera translates the buffers cc0's exporter premapped
// whole into its BAR window, and the ring (va-prefault), so the stream's page requests are
// only those the window's shortfall makes; the window's stage times leave the prefaults out;
// a refusal or a revoke after the prefault. One pipeline of camera-farm's shape (farmShape).
import t from 'tap';
import { loadScenarioFile, prepareRun } from '../../src/scenario/load.js';
import { runScenario } from '../../src/scenario/run.js';
import { details } from '../fixtures/camera_chain.js';
import { buildFabric } from '../../src/hw/topology.js';
import { Machine } from '../../src/devices/machine.js';
import { deviceKinds } from '../../src/devices/device_kinds.js';
import { safetyCheck, sharedBoot } from '../../src/workloads/kernel_boot.js';
import { runCameraChain } from '../../src/workloads/camera_chain/run.js';
import { StreamGate } from '../../src/workloads/camera_chain/stream_gate.js';
import type { CameraChainWorkload } from '../../src/workloads/camera_chain/schema.js';
import type { Scenario } from '../../src/scenario/schema.js';
import type { Kernel } from '../../src/kernel/kernel.js';
import { PROT_READ } from '../../src/kernel/vma.js';
import { PAGE_SIZE } from '../../src/shm/constants.js';

t.test('p2p: the premapped buffers and the ring are translated before the stream; the stream asks only for the buffer the window cannot hold', async (t) => {
  const s = await farmShape('scenarios/camera-chain.yaml');
  const r = await runScenario(s, { mode: 'p2p' });
  t.same(details(r)[0], [true, '4 of 4 frames']);
  t.ok(r.accounting.checks.every((c) => c.ok), 'frames bit-exact and safety holds');
  const all = Number(r.accounting.extra['page requests']);
  const before = Number(r.accounting.extra['page requests before the stream']);
  // Buffers 0 and 1 (whole in the window), the ring's page; not buffer 2's premapped head (one hold per buffer).
  t.equal(before, 3, 'one request per premapped buffer and one for the ring, before the stream');
  // Buffer 2 (its 35 pages past the window from buffer 1's tail), asked ahead once frame 1 is written.
  // Without the prefault the stream made the 3 other cold requests as well.
  t.equal(all - before, 1, `the stream's page requests: the window's shortfall only (${all} in all)`);
  t.equal(r.accounting.refaults, 0, 'no page faulted in again after an invalidation');
});

t.test("p2p, everything in the window: the stream makes no page request, and the devices' fault wait and mapping are the window's (the prefaults' are setup)", async (t) => {
  // 256 slots: the 3 buffers, their gaps and the ring, all premapped.
  const s = await farmShape('scenarios/camera-chain.yaml', 256);
  const r = await runScenario(s, { mode: 'p2p' });
  t.ok(r.accounting.checks.every((c) => c.ok), 'frames bit-exact and safety holds');
  t.equal(r.accounting.extra['page requests before the stream'], 4, 'the 3 buffers and the ring, before the stream');
  t.equal(r.accounting.extra['page requests'], 4, 'none in the stream');
  const cam = r.accounting.devices.find((d) => d.device === 'cam0')!;
  t.equal(cam.faultWaitMs, 0, "cam0's fault wait in the window: none (the prefaults' wait is not counted)");
  t.equal(cam.mapMs, 0, 'nor the kernel mapping for cam0');
});

t.test('the -iommu variant: the same requests before and in the stream (IOVAs in the replies)', async (t) => {
  const s = await farmShape('scenarios/camera-chain-iommu.yaml');
  const r = await runScenario(s, { mode: 'p2p' });
  t.ok(r.accounting.checks.every((c) => c.ok), 'frames bit-exact and safety holds');
  t.equal(r.accounting.extra['page requests before the stream'], 3);
  t.equal(Number(r.accounting.extra['page requests']) - 3, 1, 'the window shortfall only, in the stream');
  t.equal(r.accounting.refaults, 0);
});

t.test("-final: cc0's prefault of the output slots is counted before the stream; cc0 asks nothing in it", async (t) => {
  const s = await farmShape('scenarios/camera-chain-final.yaml');
  const r = await runScenario(s, { mode: 'p2p' });
  t.ok(r.accounting.checks.every((c) => c.ok), 'frames bit-exact and safety holds');
  const before = Number(r.accounting.extra['page requests before the stream']);
  // cam0's 3 (as above) and cc0's 1: the 3 output slots (225 pages), all in gpu0's window, one request.
  t.equal(before, 4, "cam0's 3 and cc0's 1");
  t.equal(Number(r.accounting.extra['page requests']) - before, 1, "the stream's: cam0's window shortfall only");
  const cc = r.accounting.devices.find((d) => d.device === 'cc0')!;
  t.equal(cc.faultWaitMs, 0, "cc0's fault wait in the window: none");
});

t.test('a revoke between the prefault and the first capture: the camera refaults, frames stay bit-exact, the checker sees nothing', async (t) => {
  const s = await farmShape('scenarios/camera-chain.yaml');
  const { ctx, w, boot } = await chainRig(t, s);
  let revoked = 0;
  /** At the window's start (setup and prefaults done, nothing captured): every exported range of the viewer is revoked. */
  class RevokeAtStart extends StreamGate {
    override async atStart(): Promise<void> {
      const mm = boot.mms.get(w.output)!;
      for (const v of mm.vmaList.filter((x) => x.kind === 'device')) {
        await mm.revokeRange(v.start, v.end, null);
        revoked += (v.end - v.start) / PAGE_SIZE;
      }
      return super.atStart();
    }
  }
  const r = await runCameraChain(ctx, { ...w, mode: 'p2p' }, undefined, new RevokeAtStart(1));
  t.ok(revoked > 0, `${revoked} pages revoked`);
  t.equal(r.verified, 4);
  t.same(r.mismatches, [], 'every frame bit-exact');
  const safety = safetyCheck(ctx.kernels);
  t.ok(safety.ok, `safety: ${safety.detail}`);
  t.equal(r.prefaults, 3, 'the prefaults as without the revoke');
  // The prefaulted buffers 0 and 1 and the ring were dropped: asked for again in the stream.
  t.ok(r.faults - r.prefaults > 1, `the stream asked again for what the revoke dropped (${r.faults - r.prefaults} requests)`);
  t.ok(r.refaults >= 2 * 75 + 1, `the prefaulted pages were faulted in again (${r.refaults} refaulted)`);
});

t.test("the stream's fault refused (buffers made read-only after the prefault): the camera's error says what, where and the kernel's why", async (t) => {
  const s = await farmShape('scenarios/camera-chain.yaml');
  const { ctx, w, boot } = await chainRig(t, s);
  /** At the window's start: the first buffers VMA (cc0's input buffers) read-only (mprotect invalidates the camera's translations). */
  class ReadOnlyAtStart extends StreamGate {
    override async atStart(): Promise<void> {
      const mm = boot.mms.get(w.output)!;
      const v = mm.vmaList.find((x) => x.kind === 'device')!;
      await mm.mprotect(v.start, v.end - v.start, PROT_READ);
      return super.atStart();
    }
  }
  await t.rejects(
    runCameraChain(ctx, { ...w, mode: 'p2p' }, undefined, new ReadOnlyAtStart(1)),
    /^device cam0 reported an error: .*cam0: write of va \[0x[0-9a-f]+, 0x[0-9a-f]+\) failed at va 0x[0-9a-f]+: EPERM; kernel: cam0: page request \[0x[0-9a-f]+, 0x[0-9a-f]+\) refused: EPERM: .*write asked on read-only/,
  );
});

/** The machine, fabric and shared boot runScenario would make for `s` (p2p), to run one pipeline with a gate of the test's. */
async function chainRig(t: { teardown(fn: () => unknown): void }, s: Scenario) {
  const sc = prepareRun(s, { mode: 'p2p' });
  const w = sc.workload as CameraChainWorkload;
  const fabric = buildFabric(sc.topology, sc.devices.map((d) => d.name), sc.seed);
  const devices = sc.devices.map((d) => ({ name: d.name, kind: d.kind, memBytes: d.memory, barBytes: d.bar, props: deviceKinds[d.kind]?.modelProps?.(d.props) ?? d.props, ignoreInvalidations: d['x-ignore-invalidations'] }));
  const machine = await Machine.create({ ramBytes: sc.machine.ram, timeoutMs: sc.machine.timeoutMs, devices });
  t.teardown(() => machine.shutdown());
  const boot = sharedBoot(1, fabric);
  const ctx = { machine, fabric, seed: sc.seed, mode: 'p2p' as const, kernels: [] as Kernel[], boot };
  return { ctx, w, boot };
}

/** `file` shrunk to one camera-farm pipeline: 3 buffers of 75 pages (320x240), 4 frames (buffers 0, 1, 2, 0), cc0's window `slots` pages. */
async function farmShape(file: string, slots = 192): Promise<Scenario> {
  const s = await loadScenarioFile(file);
  Object.assign(s.workload!, { width: 320, height: 240, frames: 4, buffers: 3 });
  Object.assign(s.devices[1], { memory: 4 * 1024 * 1024, bar: slots * PAGE_SIZE });
  return s;
}

t.test("a prefault that recycles a held slot invalidates cam0 before the window: the run's invalidations are the window's only", async (t) => {
  // 75 slots: buffer 0 fills the window; the ring's prefault then recycles a slot cam0 holds (an invalidation before the stream).
  const s = await farmShape('scenarios/camera-chain.yaml', 75);
  const { ctx, w } = await chainRig(t, s);
  let atStart = -1;
  /** The invalidation batches sent to cam0 when the window opens (setup and prefaults done). */
  class CountAtStart extends StreamGate {
    override async atStart(): Promise<void> {
      atStart = ctx.kernels[0].invalidator(w.camera).stats.sent;
      return super.atStart();
    }
  }
  const r = await runCameraChain(ctx, { ...w, mode: 'p2p' }, undefined, new CountAtStart(1));
  t.same(r.mismatches, [], 'every frame bit-exact');
  const end = ctx.kernels[0].invalidator(w.camera).stats.sent;
  t.ok(atStart > 0, `batches sent to cam0 before the window: ${atStart}`);
  t.equal(r.invalidations.sent, end - atStart, `the run counts the window's ${end - atStart} only`);
});

t.test("-iommu: the run's invalidations and stage times end with the window: the unbind's IOTLB flush after it is teardown", async (t) => {
  const s = await farmShape('scenarios/camera-chain-iommu.yaml');
  const { ctx, w } = await chainRig(t, s);
  const at = { start: -1, finish: -1 };
  /** cam0's invalidation batches when the window opens and when it closes (every frame streamed). */
  class CountAtLines extends StreamGate {
    override async atStart(): Promise<void> {
      at.start = ctx.kernels[0].invalidator(w.camera).stats.sent;
      return super.atStart();
    }
    override async atFinish(): Promise<void> {
      at.finish = ctx.kernels[0].invalidator(w.camera).stats.sent;
      return super.atFinish();
    }
  }
  const r = await runCameraChain(ctx, { ...w, mode: 'p2p' }, undefined, new CountAtLines(1));
  t.same(r.mismatches, [], 'every frame bit-exact');
  const end = ctx.kernels[0].invalidator(w.camera).stats.sent;
  t.ok(end > at.finish, `the unbind flushed cam0's IOVAs after the window (${end - at.finish} batches)`);
  t.equal(r.invalidations.sent, at.finish - at.start, `the run counts the window's ${at.finish - at.start} only`);
});

t.test("the window's counters start when the window opens (the gate's start line), not before it: a revoke while waiting there is not the window's", async (t) => {
  const s = await farmShape('scenarios/camera-chain.yaml');
  const { ctx, w, boot } = await chainRig(t, s);
  const at = { open: -1, finish: -1 };
  /** While this pipeline waits at the start line (another pipeline's setup, say), cam0's translations are revoked. */
  class RevokeWhileWaiting extends StreamGate {
    override async atStart(): Promise<void> {
      const mm = boot.mms.get(w.output)!;
      for (const v of mm.vmaList.filter((x) => x.kind === 'device')) await mm.revokeRange(v.start, v.end, null);
      await super.atStart();
      at.open = ctx.kernels[0].invalidator(w.camera).stats.sent;
    }
    override async atFinish(): Promise<void> {
      at.finish = ctx.kernels[0].invalidator(w.camera).stats.sent;
      return super.atFinish();
    }
  }
  const r = await runCameraChain(ctx, { ...w, mode: 'p2p' }, undefined, new RevokeWhileWaiting(1));
  t.same(r.mismatches, [], 'every frame bit-exact');
  t.ok(at.open > 0, `the revoke invalidated cam0 before the window opened (${at.open} batches by then)`);
  t.equal(r.invalidations.sent, at.finish - at.open, `the run counts the window's ${at.finish - at.open} only`);
});
