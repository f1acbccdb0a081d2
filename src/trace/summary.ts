/**
 * Human summaries of runs, laid out for a terminal of `$COLUMNS` (default
 * 100; src/trace/text_layout.ts): the figures a user looks for first
 * (payload, wall time, throughput beside the memcpy baseline of the same
 * run, modeled PCIe time, system RAM and P2P traffic, kernel
 * interventions, invalidations and refaults, time per stage), the data
 * checks, a per-device table, and under it the fabric's reason for the
 * mode; then the side-by-side comparison of a p2p and a bounce run.
 *
 * Rules: every count carries its unit; camelCase `extra` keys are machine
 * figures and stay in --json; words are the README's ("page requests" are
 * what a device sends to fault translations in, "refaults" the pages it
 * faults in again after an invalidation dropped them).
 */
import { VerifyError } from '../errors.js';
import { formatBytes } from '../common/size.js';
import type { RunReport } from '../scenario/run.js';
import { workloadDefs } from '../workloads/registry.js';
import type { Accounting } from '../workloads/workload.js';
import { kvBlock, paragraph, table, terminalColumns } from './text_layout.js';
import { comparisonWhy, type WhyFigures } from './compare_why.js';

const MB = 1e6;

export function throughput(r: RunReport): number {
  return r.accounting.payloadBytes / (r.accounting.wallMs / 1000);
}

/** Payload over modeled PCIe time, bytes/s (0 when the run priced no transfer). */
export function modeledThroughput(r: RunReport): number {
  return r.accounting.modeledSeconds > 0 ? r.accounting.payloadBytes / r.accounting.modeledSeconds : 0;
}

/** A count with its unit, singular when it is one ("1 slot", "26763 slots"). */
export function count(n: number, unit: string): string {
  if (unit === 'B') return formatBytes(n);
  const figure = Number.isInteger(n) ? String(n) : n.toFixed(3).replace(/\.?0+$/, '');
  const u = n === 1 && unit.endsWith('s') && !unit.endsWith('ss') && unit !== 'IO/s' ? unit.slice(0, -1) : unit;
  return `${figure} ${u}`;
}

/** camelCase keys of `extra` are machine figures: --json only. */
export function isMachineKey(k: string): boolean {
  return /^[a-z]+[A-Z]/.test(k);
}

function modeled(a: Accounting): string {
  if (a.modeledSeconds <= 0) return 'n/a';
  return `${(a.modeledSeconds * 1000).toFixed(3)} ms of virtual PCIe time (${(a.payloadBytes / a.modeledSeconds / MB).toFixed(0)} MB/s)`;
}

function share(part: number, whole: number): string {
  return whole > 0 ? ` (${(part / whole).toFixed(2)}x payload)` : '';
}

/** The five stages of a run's time, summed over devices (compute, DMA, fault wait) or kernel (mapping, invalidation). */
export interface StageSums {
  readonly computeMs: number;
  readonly dmaMs: number;
  readonly faultWaitMs: number;
  readonly mapMs: number;
  readonly invalidationMs: number;
}

export function stageSums(a: Accounting): StageSums {
  const sum = (f: (d: Accounting['devices'][number]) => number) => a.devices.reduce((t, d) => t + f(d), 0);
  return { computeMs: sum((d) => d.computeMs), dmaMs: sum((d) => d.dmaMs), faultWaitMs: sum((d) => d.faultWaitMs), mapMs: sum((d) => d.mapMs), invalidationMs: a.invalidations.ackWaitMs };
}

function stageLine(a: Accounting): string {
  const s = stageSums(a);
  const ms = (n: number) => `${n.toFixed(1)} ms`;
  return `device compute ${ms(s.computeMs)}, DMA ${ms(s.dmaMs)}, fault wait ${ms(s.faultWaitMs)}; kernel mapping ${ms(s.mapMs)}, invalidation (ack wait) ${ms(s.invalidationMs)}`;
}

function invalidationLine(a: Accounting): string {
  const i = a.invalidations;
  const acks = i.sent > 0 ? `; ack p99 ${i.p99AckUs.toFixed(0)} us, max ${i.maxAckUs.toFixed(0)} us` : '';
  return `${count(i.sent, 'batches')} sent, ${i.acked} acked${acks}`;
}

/** The mode row, and the paragraph under the tables saying why (the fabric's reasons). */
function modeAndWhy(r: RunReport): { mode: string; why: string | null } {
  if (r.fallback) return { mode: `bounce (asked ${r.requestedMode}; the topology forbids P2P: see below)`, why: `Why bounce: ${r.fallback}` };
  if (r.mode === 'bounce') return { mode: 'bounce (asked for: every transfer crosses system RAM)', why: null };
  const pairs = r.verdicts.map((v) => `${v.provider} -> ${v.client}: ${v.map}, ${v.reason}`);
  return { mode: `p2p (${r.verdicts.map((v) => `${v.provider} -> ${v.client} ${v.map}`).join(', ')}: see below)`, why: `Why p2p: ${pairs.join('\n')}` };
}

function extraRows(r: RunReport): [string, string][] {
  const units = workloadDefs[r.workload as keyof typeof workloadDefs]?.units ?? {};
  return Object.entries(r.accounting.extra)
    .filter(([k]) => !isMachineKey(k))
    .map(([k, v]) => [k, typeof v === 'number' ? (units[k] ? count(v, units[k]) : String(v)) : v]);
}

/** Devices, boot, memory per worker, the host's device limit and the run tokens (src/devices/limits.ts, run_tokens.ts). */
function machineLine(r: RunReport): string {
  const m = r.machine;
  const tokens = m.runTokens > 0 ? `run tokens ${m.runTokens}, ${m.tokenWaits} waits` : 'run tokens off';
  // Reused workers were warm (their threads ran an earlier run of this mode): their boot is a
  // configure, and the RSS growth of a boot that spawned nothing measures no worker, so it is left out.
  const reused = m.reused > 0 ? `reused ${m.reused} warm, ` : '';
  const rss = m.reused < m.devices ? `~${(m.rssPerWorkerBytes / 2 ** 20).toFixed(1)} MiB, ` : '';
  return `${m.devices} workers (${reused}${rss}boot ${m.ms.toFixed(0)} ms), limit ${m.deviceLimit}; ${m.cores} cores, ${tokens}`;
}

export function formatSummary(r: RunReport, cols = terminalColumns()): string {
  const a = r.accounting;
  const rate = throughput(r);
  const { mode, why } = modeAndWhy(r);
  const rows: [string, string][] = [
    ['scenario', `${r.scenario} (workload ${r.workload}, seed ${r.seed})`],
    ['mode', mode],
    ['machine', machineLine(r)],
    ...extraRows(r),
    ['payload', formatBytes(a.payloadBytes)],
    ['wall time', `${a.wallMs.toFixed(1)} ms`],
    ['throughput', `${(rate / MB).toFixed(1)} MB/s = ${(rate / r.memcpy.rate).toFixed(3)}x raw SAB memcpy at DRAM scale (${(r.memcpy.rate / MB).toFixed(0)} MB/s; in cache ${(r.memcpyCached.rate / MB).toFixed(0)} MB/s)`],
    ['timed window', 'data movement and device compute (not setup, not verification)'],
    ['modeled PCIe', modeled(a)],
    ['system RAM traffic', `${formatBytes(a.ramBytes)}${share(a.ramBytes, a.payloadBytes)}, of which bounce ${formatBytes(a.bounceBytes)}`],
    ['device-to-device', formatBytes(a.p2pBytes) + share(a.p2pBytes, a.payloadBytes)],
    ['kernel interventions', count(a.hostInterventions, 'interventions')],
    ['p2p map / unmap', `whole run: ${r.p2pSlots.maps} maps (${r.p2pSlots.mappedPages} pages), ${r.p2pSlots.unmaps} unmaps (${r.p2pSlots.unmappedPages} pages); BAR slots recycled ${r.p2pSlots.recycled}, ${r.p2pSlots.revokedForReuse} of them while held (revoked first)`],
    ['invalidations', invalidationLine(a)],
    ['refaults', `${count(a.refaults, 'pages')} faulted in again after an invalidation`],
    ['time per stage', stageLine(a)],
    ...a.checks.map((c): [string, string] => [c.ok ? 'check ok' : 'CHECK FAILED', `${c.name}: ${c.detail}`]),
  ];
  const devs = table(
    ['device', 'commands', 'DMA ms', 'compute ms', 'RAM read', 'RAM written', 'P2P read', 'P2P written'],
    a.devices.map((d) => [d.device, String(d.commands), d.dmaMs.toFixed(1), d.computeMs.toFixed(1), formatBytes(d.bytesFromRam), formatBytes(d.bytesToRam), formatBytes(d.bytesFromPeer), formatBytes(d.bytesToPeer)]),
    cols,
  );
  const parts = [kvBlock(rows, cols), '', devs];
  if (why) parts.push('', paragraph(why, cols, 0, 2));
  return parts.join('\n') + '\n';
}

function ratio(a: number, b: number): string {
  if (b === 0) return a === 0 ? '-' : 'inf';
  return `${(a / b).toFixed(3)}x`;
}

export function formatComparison([p, b]: readonly [RunReport, RunReport], cols = terminalColumns()): string {
  const rows: string[][] = [];
  const row = (name: string, f: (r: RunReport) => number, fmt: (n: number) => string) => rows.push([name, fmt(f(p)), fmt(f(b)), ratio(f(p), f(b))]);
  const mbs = (n: number) => `${(n / MB).toFixed(1)} MB/s`;
  const ms = (n: number) => `${n.toFixed(1)} ms`;
  const stage = (k: keyof StageSums) => (r: RunReport) => stageSums(r.accounting)[k];
  row('throughput (real)', throughput, mbs);
  row('modeled PCIe throughput', modeledThroughput, mbs);
  row('wall time', (r) => r.accounting.wallMs, ms);
  row('device compute (sum)', stage('computeMs'), ms);
  row('device DMA (sum)', stage('dmaMs'), ms);
  row('device fault wait (sum)', stage('faultWaitMs'), ms);
  row('kernel mapping', stage('mapMs'), ms);
  row('kernel invalidation wait', stage('invalidationMs'), ms);
  row('system RAM traffic', (r) => r.accounting.ramBytes, formatBytes);
  row('bounce traffic', (r) => r.accounting.bounceBytes, formatBytes);
  row('device-to-device', (r) => r.accounting.p2pBytes, formatBytes);
  row('kernel interventions', (r) => r.accounting.hostInterventions, String);
  row('invalidation batches', (r) => r.accounting.invalidations.sent, String);
  row('refaults (pages)', (r) => r.accounting.refaults, String);
  const head = [p.scenario, `p2p${p.mode !== 'p2p' ? ' (fell back)' : ''}`, 'bounce', 'p2p / bounce'];
  const saved = b.accounting.ramBytes - p.accounting.ramBytes;
  const note = `System RAM bytes saved by p2p: ${formatBytes(Math.max(0, saved))}; memcpy baseline ${(p.memcpy.rate / MB).toFixed(0)} MB/s at DRAM scale (in cache ${(p.memcpyCached.rate / MB).toFixed(0)} MB/s), measured once for both runs.`;
  const why = comparisonWhy(whyFigures(p), whyFigures(b));
  return `${table(head, rows, cols)}\n${paragraph(note, cols)}\n\n${paragraph(why, cols)}\n`;
}

function whyFigures(r: RunReport): WhyFigures {
  const a = r.accounting;
  return { rate: throughput(r), ...stageSums(a), bounceBytes: a.bounceBytes, refaults: a.refaults, cpuMs: a.cpuMs };
}

/** Throws a VerifyError listing every failed data check of the run. */
export function assertChecks(r: RunReport): void {
  const bad = r.accounting.checks.filter((c) => !c.ok);
  if (bad.length === 0) return;
  throw new VerifyError(`${r.scenario} (${r.mode}): ${bad.map((c) => `${c.name}: ${c.detail}`).join('\n')}`);
}
