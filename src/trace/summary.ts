/**
 * Human summary of a run: the figures a user looks for first (frames,
 * bytes, wall time, throughput beside the memcpy baseline, bytes through
 * system RAM), then a per-device table.
 */
import Table from 'cli-table3';
import { formatBytes } from '../scenario/size.js';
import type { RunReport } from '../scenario/run.js';

const MB = 1e6;

export function throughput(r: RunReport): number {
  return r.result.payloadBytes / (r.result.wallMs / 1000);
}

export function formatSummary(r: RunReport): string {
  const res = r.result;
  const rate = throughput(r);
  const head = new Table({ style: { head: [], border: [] } });
  head.push(
    { scenario: `${r.scenario} (${r.workload}, ${r.mode} mode, seed ${r.seed})` },
    { frames: `${res.frames} x ${r.width}x${r.height} RGBA, ${res.verified} verified bit-exact, ${res.mismatches.length} mismatches` },
    { payload: `${formatBytes(res.payloadBytes)} (${formatBytes(res.frameBytes)} per frame)` },
    { 'wall time': `${res.wallMs.toFixed(1)} ms` },
    { throughput: `${(rate / MB).toFixed(1)} MB/s  (${(rate / r.memcpy.rate).toFixed(3)}x raw SAB memcpy of ${(r.memcpy.rate / MB).toFixed(0)} MB/s, same run)` },
    { 'system RAM traffic': `${formatBytes(res.ramBytes)} (${(res.ramBytes / res.payloadBytes).toFixed(2)}x payload)` },
    { 'device-to-device': formatBytes(res.p2pBytes) },
    { 'kernel commands': `${res.hostCommands} (${(res.hostCommands / res.frames).toFixed(1)} per frame)` },
  );
  const devs = new Table({ head: ['device', 'commands', 'DMA ms', 'compute ms', 'RAM read', 'RAM written', 'P2P read', 'P2P written'], style: { head: [], border: [] } });
  for (const d of res.devices) {
    devs.push([d.name, d.commands, d.dmaMs.toFixed(1), d.computeMs.toFixed(1), formatBytes(d.bytesFromRam), formatBytes(d.bytesToRam), formatBytes(d.bytesFromPeer), formatBytes(d.bytesToPeer)]);
  }
  return `${head.toString()}\n${devs.toString()}`;
}
