/**
 * The camera chain as a registered workload: its device roles, the pairs
 * that must talk directly in p2p mode, and its accounting. With
 * `pipelines: N` the N chains run at once (src/workloads/instances.ts),
 * sharing one verify pool and one StreamGate (their windows open together
 * once all are set up; their frames are checked once all have streamed).
 */
import type { WorkloadDef, Accounting, Check, WorkloadContext } from '../workload.js';
import { modeledSeconds } from '../accounting.js';
import { runCameraChain, verifyPool, type ChainResult } from './run.js';
import type { CameraChainWorkload } from './schema.js';
import { instanceName, prefixProblems, runInstances, type Instance } from '../instances.js';
import type { Piscina } from 'piscina';
import { StreamGate } from './stream_gate.js';

/** Pipeline i's own workload: its devices (`cam` -> cam<i>), its output process, one pipeline. */
function pipeline(w: CameraChainWorkload, i: number): CameraChainWorkload {
  const n = w.pipelines;
  const name = (x: string) => instanceName(x, i, n);
  return { ...w, camera: name(w.camera), corrector: name(w.corrector), final: w.final && name(w.final), output: w.outputs === 'per-pipeline' ? name(w.output) : w.output, pipelines: 1 };
}

function pipelines(w: CameraChainWorkload): Instance<CameraChainWorkload>[] {
  return Array.from({ length: w.pipelines }, (_, i) => {
    const p = pipeline(w, i);
    return { label: `${p.camera} -> ${p.corrector}${p.final ? ` -> ${p.final}` : ''}`, w: p };
  });
}

function frameCheck(r: ChainResult): Check {
  const bad = r.mismatches.slice(0, 5).map((m) => `frame ${m.frame}: byte ${m.mismatchAt} is 0x${m.got.toString(16)}, reference 0x${m.expected.toString(16)} (${m.mismatches} byte(s) differ)`);
  return {
    name: 'frames bit-exact against the CPU reference',
    ok: r.mismatches.length === 0 && r.verified === r.frames,
    detail: bad.length === 0 ? `${r.verified} of ${r.frames} frames` : `${r.mismatches.length} of ${r.frames} frame(s) differ:\n  ${bad.join('\n  ')}`,
  };
}

export const cameraChainDef: WorkloadDef<CameraChainWorkload> = {
  kind: 'camera-chain',
  doc: 'RFC workload (4): camera -> colour correction -> process memory',
  roles: (w) =>
    pipelines(w).flatMap(({ w: p }) => [
      { key: 'camera', device: p.camera, kinds: ['camera'] },
      { key: 'corrector', device: p.corrector, kinds: ['colour-correction'] },
      ...(p.final ? [{ key: 'final', device: p.final, kinds: ['accelerator'] }] : []),
    ]),
  processes: (w) => [...new Set(pipelines(w).map(({ w: p }) => p.output))].map((name) => ({ key: 'output', name })),
  validate: (w, devices) => prefixProblems('pipelines', w.pipelines, { camera: w.camera, corrector: w.corrector, final: w.final }, devices),
  p2pPairs: (w) => pipelines(w).flatMap(({ w: p }) => [[p.corrector, p.camera], ...(p.final ? ([[p.final, p.corrector]] as [string, string][]) : [])] as [string, string][]),
  // Pipeline 0's frames: the pipelines run at once, each with the same count.
  progress: { device: (w) => pipeline(w, 0).corrector, total: (w) => w.frames, unit: 'frames' },
  units: { frames: 'frames', verified: 'frames', 'page requests': 'requests', 'page requests before the stream': 'requests', 'BAR slots recycled': 'slots' },
  scale: (w, n) => ({ ...w, frames: n }),
  async run(ctx, w): Promise<Accounting> {
    if (w.pipelines === 1) return runPipeline(ctx, w);
    const pool = verifyPool();
    const gate = new StreamGate(w.pipelines);
    try {
      const run = (c: WorkloadContext, p: CameraChainWorkload) =>
        runPipeline(c, p, pool, gate).catch((e: unknown) => {
          gate.open(); // the run fails anyway: parked pipelines go on to their cleanup (stream_gate.ts)
          throw e;
        });
      return (await runInstances(ctx, pipelines(w), run)).merged;
    } finally {
      await pool.destroy();
    }
  },
};

/** One pipeline, run and accounted. */
async function runPipeline(ctx: WorkloadContext, w: CameraChainWorkload, pool?: Piscina, gate?: StreamGate): Promise<Accounting> {
  const r = await runCameraChain(ctx, w, pool, gate);
  const [cam, cc, fin] = r.devices;
  const p2p = ctx.mode === 'p2p';
  // The link model prices the bytes the devices really moved, on the path each took.
  const flows = [
    { id: 'capture', src: w.camera, dst: p2p ? w.corrector : 'ram', bytes: cam.bytesToPeer + cam.bytesToRam },
    { id: 'bounce-in', src: 'ram', dst: w.corrector, bytes: cc.bytesFromRam },
    { id: 'result', src: w.corrector, dst: w.final && p2p ? w.final : 'ram', bytes: cc.bytesToPeer + cc.bytesToRam },
    { id: 'final-in', src: 'ram', dst: w.final ?? 'ram', bytes: fin?.bytesFromRam ?? 0 },
  ].filter((f) => f.bytes > 0);
  return {
    payloadBytes: r.payloadBytes,
    ramBytes: r.ramBytes,
    // RAM traffic that only staged frames between devices: all of it with a
    // final device; without one, all but cc0's writes into the viewer's memory.
    bounceBytes: w.final ? r.ramBytes : r.ramBytes - cc.bytesToRam,
    p2pBytes: r.p2pBytes,
    hostInterventions: r.hostCommands,
    invalidations: r.invalidations,
    refaults: r.refaults,
    wallMs: r.wallMs,
    // Process-wide: with several pipelines in one process each would count the others'.
    ...(ctx.boot ? {} : { cpuMs: r.cpuMs }),
    modeledSeconds: modeledSeconds(ctx.fabric, flows),
    devices: r.devices,
    checks: [frameCheck(r)],
    extra: {
      frames: r.frames,
      'frame size': `${w.width}x${w.height} RGBA (${r.frameBytes} bytes)`,
      verified: r.verified,
      ...(ctx.mode === 'p2p' ? { 'page requests': r.faults, 'page requests before the stream': r.prefaults, 'BAR slots recycled': r.barRecycled } : {}),
    },
  };
}
