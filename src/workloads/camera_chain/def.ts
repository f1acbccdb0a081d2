/**
 * The camera chain as a registered workload: its device roles, the pairs
 * that must talk directly in p2p mode, and its accounting.
 */
import type { WorkloadDef } from '../registry.js';
import type { Accounting, Check } from '../workload.js';
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
  ],
  processes: (w) => [{ key: 'output', name: w.output }],
  p2pPairs: (w) => [[w.corrector, w.camera]],
  scale: (w, n) => ({ ...w, frames: n }),
  async run(ctx, w): Promise<Accounting> {
    const r = await runCameraChain(ctx, w);
    const cam = r.devices[0];
    const cc = r.devices[1];
    const flows = [
      { id: 'capture', src: w.camera, dst: ctx.mode === 'p2p' ? w.corrector : 'ram', bytes: r.payloadBytes },
      ...(ctx.mode === 'bounce' ? [{ id: 'bounce-in', src: 'ram', dst: w.corrector, bytes: r.payloadBytes }] : []),
      { id: 'result', src: w.corrector, dst: 'ram', bytes: r.payloadBytes },
    ];
    return {
      payloadBytes: r.payloadBytes,
      ramBytes: r.ramBytes,
      bounceBytes: cam.bytesToRam + cc.bytesFromRam,
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
