/**
 * The camera chain as a registered workload: its device roles, the pairs
 * that must talk directly in p2p mode, and its accounting.
 */
import type { WorkloadDef, Accounting, Check } from '../workload.js';
import { modeledSeconds } from '../accounting.js';
import { runCameraChain, type ChainResult } from './run.js';
import type { CameraChainWorkload } from './schema.js';

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
  roles: (w) => [
    { key: 'camera', device: w.camera, kinds: ['camera'] },
    { key: 'corrector', device: w.corrector, kinds: ['colour-correction'] },
    ...(w.final ? [{ key: 'final', device: w.final, kinds: ['accelerator'] }] : []),
  ],
  processes: (w) => [{ key: 'output', name: w.output }],
  p2pPairs: (w) => [[w.corrector, w.camera], ...(w.final ? ([[w.final, w.corrector]] as [string, string][]) : [])],
  progress: { device: (w) => w.corrector, total: (w) => w.frames, unit: 'frames' },
  units: { frames: 'frames', verified: 'frames', 'camera page requests': 'requests', 'BAR slots recycled': 'slots' },
  scale: (w, n) => ({ ...w, frames: n }),
  async run(ctx, w): Promise<Accounting> {
    const r = await runCameraChain(ctx, w);
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
      modeledSeconds: modeledSeconds(ctx.fabric, flows),
      devices: r.devices,
      checks: [frameCheck(r)],
      extra: {
        frames: r.frames,
        'frame size': `${w.width}x${w.height} RGBA (${r.frameBytes} bytes)`,
        verified: r.verified,
        ...(ctx.mode === 'p2p' ? { 'camera page requests': r.faults, 'BAR slots recycled': r.barRecycled } : {}),
      },
    };
  },
};
