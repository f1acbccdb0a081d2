/**
 * Human summaries of runs: the figures a user looks for first (payload,
 * wall time, throughput beside the memcpy baseline of the same run,
 * modeled PCIe time, system RAM and P2P traffic, kernel interventions,
 * invalidations), the data checks, then a per-device table; and the
 * side-by-side comparison of a p2p and a bounce run.
 */
import Table from 'cli-table3';
import { VerifyError } from '../errors.js';
import { formatBytes } from '../scenario/size.js';
import type { RunReport } from '../scenario/run.js';

const MB = 1e6;
const plain = { style: { head: [], border: [] } };

export function throughput(r: RunReport): number {
  return r.accounting.payloadBytes / (r.accounting.wallMs / 1000);
}

function modeled(r: RunReport): string {
  const a = r.accounting;
  if (a.modeledSeconds <= 0) return 'n/a';
  return `${(a.modeledSeconds * 1000).toFixed(3)} ms, ${(a.payloadBytes / a.modeledSeconds / MB).toFixed(0)} MB/s (virtual PCIe time)`;
}

function share(part: number, whole: number): string {
  return whole > 0 ? ` (${(part / whole).toFixed(2)}x payload)` : '';
}

export function formatSummary(r: RunReport): string {
  const a = r.accounting;
  const rate = throughput(r);
  const head = new Table(plain);
  const mode = r.mode === r.requestedMode ? r.mode : `${r.mode} (asked ${r.requestedMode}; fell back: the topology forbids P2P)`;
  head.push(
    { scenario: `${r.scenario} (${r.workload}, seed ${r.seed})` },
    { mode },
    ...Object.entries(a.extra).map(([k, v]) => ({ [k]: String(v) })),
    { payload: formatBytes(a.payloadBytes) },
    { 'wall time': `${a.wallMs.toFixed(1)} ms` },
    { throughput: `${(rate / MB).toFixed(1)} MB/s  (${(rate / r.memcpy.rate).toFixed(3)}x raw SAB memcpy of ${(r.memcpy.rate / MB).toFixed(0)} MB/s, same run)` },
    { 'modeled PCIe': modeled(r) },
    { 'system RAM traffic': formatBytes(a.ramBytes) + share(a.ramBytes, a.payloadBytes) },
    { 'of which bounce': formatBytes(a.bounceBytes) + share(a.bounceBytes, a.payloadBytes) },
    { 'device-to-device': formatBytes(a.p2pBytes) + share(a.p2pBytes, a.payloadBytes) },
    { 'kernel interventions': String(a.hostInterventions) },
    { invalidations: `${a.invalidations.sent} sent, ${a.invalidations.acked} acked, ack max ${a.invalidations.maxAckUs.toFixed(0)} us, p99 ${a.invalidations.p99AckUs.toFixed(0)} us; ${a.refaults} refaults` },
    ...a.checks.map((c) => ({ [c.ok ? 'check ok' : 'CHECK FAILED']: `${c.name}: ${c.detail}` })),
  );
  if (r.fallback) head.push({ 'why bounce': r.fallback });
  const devs = new Table({ head: ['device', 'commands', 'DMA ms', 'compute ms', 'RAM read', 'RAM written', 'P2P read', 'P2P written'], ...plain });
  for (const d of a.devices) {
    devs.push([d.device, d.commands, d.dmaMs.toFixed(1), d.computeMs.toFixed(1), formatBytes(d.bytesFromRam), formatBytes(d.bytesToRam), formatBytes(d.bytesFromPeer), formatBytes(d.bytesToPeer)]);
  }
  return `${head.toString()}\n${devs.toString()}`;
}

function ratio(a: number, b: number): string {
  if (b === 0) return a === 0 ? '-' : 'inf';
  return `${(a / b).toFixed(3)}x`;
}

export function formatComparison([p, b]: readonly [RunReport, RunReport]): string {
  const t = new Table({ head: [`${p.scenario}`, `p2p${p.mode !== 'p2p' ? ' (fell back)' : ''}`, 'bounce', 'p2p / bounce'], ...plain });
  const row = (name: string, f: (r: RunReport) => number, fmt: (n: number) => string) => t.push([name, fmt(f(p)), fmt(f(b)), ratio(f(p), f(b))]);
  const mbs = (n: number) => `${(n / MB).toFixed(1)} MB/s`;
  row('throughput (real)', throughput, mbs);
  row('modeled PCIe throughput', (r) => (r.accounting.modeledSeconds > 0 ? r.accounting.payloadBytes / r.accounting.modeledSeconds : 0), mbs);
  row('wall time', (r) => r.accounting.wallMs, (n) => `${n.toFixed(1)} ms`);
  const ms = (n: number) => `${n.toFixed(1)} ms`;
  row('device DMA time (sum)', (r) => r.accounting.devices.reduce((x, d) => x + d.dmaMs, 0), ms);
  row('device compute time (sum)', (r) => r.accounting.devices.reduce((x, d) => x + d.computeMs, 0), ms);
  row('system RAM traffic', (r) => r.accounting.ramBytes, formatBytes);
  row('bounce traffic', (r) => r.accounting.bounceBytes, formatBytes);
  row('device-to-device', (r) => r.accounting.p2pBytes, formatBytes);
  row('kernel interventions', (r) => r.accounting.hostInterventions, String);
  row('invalidations sent', (r) => r.accounting.invalidations.sent, String);
  row('refaults', (r) => r.accounting.refaults, String);
  const saved = b.accounting.ramBytes - p.accounting.ramBytes;
  return `${t.toString()}\nsystem RAM bytes saved by p2p: ${formatBytes(Math.max(0, saved))}; memcpy baseline ${(p.memcpy.rate / MB).toFixed(0)} / ${(b.memcpy.rate / MB).toFixed(0)} MB/s`;
}

/** Throws a VerifyError listing every failed data check of the run. */
export function assertChecks(r: RunReport): void {
  const bad = r.accounting.checks.filter((c) => !c.ok);
  if (bad.length === 0) return;
  throw new VerifyError(`${r.scenario} (${r.mode}): ${bad.map((c) => `${c.name}: ${c.detail}`).join('\n')}`);
}
