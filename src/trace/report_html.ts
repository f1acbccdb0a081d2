/**
 * The HTML report of `peervma run --compare --report FILE` (and of any
 * caller with p2p/bounce pairs of RunReports, such as bench or stress):
 * one self-contained file — inline CSS, SVG charts drawn here
 * (svg_charts.ts), the topology drawn by topo_svg.ts, no script and no
 * network — with:
 *
 * - the headline figures per scenario (real throughput of both modes and
 *   their ratio, modeled PCIe time, system RAM traffic and what p2p saved);
 * - P2P vs bounce charts: real throughput, modeled PCIe time, RAM traffic;
 * - time per stage (device compute, DMA, fault wait; kernel mapping,
 *   invalidation ack wait) per scenario and mode;
 * - the invalidation ack latency distribution;
 * - modeled link utilisation per PCIe link;
 * - the topology with its P2P matrix;
 * - with bench rows (peervma bench --report): every row of the bench,
 *   id, unit, median, min, max and ratio to its baseline row.
 */
import { writeOutputFile } from '../common/output_file_write.js';
import { buildFabric } from '../hw/topology.js';
import { formatBytes } from '../common/size.js';
import type { Scenario } from '../scenario/schema.js';
import type { RunReport } from '../scenario/run.js';
import { columns, groupedBars, histogram, stackedBars } from './svg_charts.js';
import { stageSums, throughput } from './summary.js';
import { topoGraph, type TopoGraph } from './topo_graph.js';
import { esc, renderTopoSvg } from './topo_svg.js';

export interface ReportComparison {
  readonly p2p: RunReport;
  readonly bounce: RunReport;
}

export interface ReportInput {
  readonly title: string;
  readonly comparisons: readonly ReportComparison[];
  /** The machine's fabric, drawn with its P2P matrix. */
  readonly topology?: { readonly graph: TopoGraph; readonly source: string };
  /** Free lines under the title (command line, host). */
  readonly notes?: readonly string[];
  /** peervma bench's rows (bench/stats.ts BenchRow), shown as one table. */
  readonly benchRows?: readonly BenchRowView[];
}

/** What the report shows of a bench row; bench/stats.ts BenchRow extends it (src/ never imports bench/). */
export interface BenchRowView {
  readonly id: string;
  readonly unit: string;
  readonly median: number;
  readonly min: number;
  readonly max: number;
  readonly baseline: string | null;
  readonly ratio: number | null;
}

const MB = 1e6;
const mbs = (v: number) => `${(v / MB).toFixed(1)} MB/s`;
const ms = (v: number) => `${v.toFixed(2)} ms`;
const modeledMs = (r: RunReport) => r.accounting.modeledSeconds * 1000;
const STAGES = ['device compute', 'DMA', 'fault wait', 'kernel mapping', 'invalidation wait'] as const;

function headline(c: ReportComparison): string {
  const { p2p: p, bounce: b } = c;
  const tp = throughput(p);
  const tb = throughput(b);
  const saved = Math.max(0, b.accounting.ramBytes - p.accounting.ramBytes);
  const cell = (key: string, v: string) => `<td class="headline" data-key="${esc(`${p.scenario}:${key}`)}">${esc(v)}</td>`;
  return `<tr><th>${esc(p.scenario)}${p.mode !== 'p2p' ? ' (p2p fell back)' : ''}</th>${cell('throughput-p2p', mbs(tp))}${cell('throughput-bounce', mbs(tb))}${cell('throughput-ratio', `${(tp / tb).toFixed(2)}x`)}${cell('modeled-p2p', ms(modeledMs(p)))}${cell('modeled-bounce', ms(modeledMs(b)))}${cell('ram-p2p', formatBytes(p.accounting.ramBytes))}${cell('ram-bounce', formatBytes(b.accounting.ramBytes))}${cell('ram-saved', formatBytes(saved))}</tr>`;
}

function deviceTable(r: RunReport): string {
  const rows = r.accounting.devices
    .map((d) => `<tr><td>${esc(d.device)}</td><td>${d.commands}</td><td>${d.dmaMs.toFixed(1)}</td><td>${d.computeMs.toFixed(1)}</td><td>${d.faultWaitMs.toFixed(1)}</td><td>${d.mapMs.toFixed(1)}</td><td>${formatBytes(d.bytesFromRam)}</td><td>${formatBytes(d.bytesToRam)}</td><td>${formatBytes(d.bytesFromPeer)}</td><td>${formatBytes(d.bytesToPeer)}</td></tr>`)
    .join('');
  return `<table class="devices"><caption>${esc(`${r.scenario}, ${r.mode}`)}</caption><tr><th>device</th><th>commands</th><th>DMA ms</th><th>compute ms</th><th>fault wait ms</th><th>kernel mapping ms</th><th>RAM read</th><th>RAM written</th><th>P2P read</th><th>P2P written</th></tr>${rows}</table>`;
}

function linkChart(c: ReportComparison, i: number): string {
  const ids = [...new Set([...c.p2p.links, ...c.bounce.links].map((l) => l.id))];
  if (ids.length === 0) return `<p class="note">${esc(c.p2p.scenario)}: the link model priced no transfer.</p>`;
  const label = (id: string) => [...c.p2p.links, ...c.bounce.links].find((l) => l.id === id)!.label;
  const use = (r: RunReport, id: string) => (r.links.find((l) => l.id === id)?.utilisation ?? 0) * 100;
  return groupedBars({
    name: `links-${i}`,
    title: `${c.p2p.scenario}: modeled link utilisation (% of capacity over the modeled transfer time)`,
    series: ['p2p', 'bounce'],
    groups: ids.map((id) => ({ label: label(id).replace(/ \([\d.]+ GB\/s\)$/, ''), values: [use(c.p2p, id), use(c.bounce, id)] })),
    format: (v) => `${v.toFixed(0)} %`,
  });
}

function ackChart(c: ReportComparison, i: number): string {
  const samples = [...c.p2p.ackUs, ...c.bounce.ackUs];
  if (samples.length === 0) return `<p class="note">${esc(c.p2p.scenario)}: no invalidation was sent in either run.</p>`;
  const sorted = [...samples].sort((a, b) => a - b);
  const p99 = sorted[Math.min(sorted.length - 1, Math.ceil(0.99 * sorted.length) - 1)];
  const p50 = sorted[Math.floor((sorted.length - 1) / 2)];
  return histogram({ name: `acks-${i}`, title: `${c.p2p.scenario}: invalidation ack latency, ${samples.length} acks (both modes)`, samples, bins: Math.min(30, Math.max(5, Math.ceil(Math.sqrt(samples.length)))), unit: 'us', marks: [{ label: 'p50', value: p50 }, { label: 'p99', value: p99 }] });
}

function benchNum(x: number): string {
  if (x >= 1000) return x.toFixed(0);
  if (x >= 10) return x.toFixed(1);
  return x.toFixed(2);
}

function benchTable(rows: readonly BenchRowView[]): string {
  const tr = (r: BenchRowView) =>
    `<tr data-row="${esc(r.id)}"><td>${esc(r.id)}</td><td>${esc(r.unit)}</td><td>${benchNum(r.median)}</td><td>${benchNum(r.min)}</td><td>${benchNum(r.max)}</td><td>${r.ratio === null ? '' : r.ratio.toFixed(3)}</td><td>${esc(r.baseline ?? '')}</td></tr>`;
  return `<table class="bench"><tr><th>id</th><th>unit</th><th>median</th><th>min</th><th>max</th><th>ratio</th><th>vs</th></tr>${rows.map(tr).join('')}</table><p class="note">ratio = median / median of the vs row, both measured in the same bench run. Other processes share the cores: compare ratios, not absolute figures.</p>`;
}

/** Bench rows dma.p2p.cmd.<n>k|m (bench/cmd_size.ts), by command size. */
const CMD_ROW = /^dma\.p2p\.cmd\.(\d+)([km])$/;

/** Throughput against command size, when the bench rows have the sweep. */
function cmdSizeSection(rows: readonly BenchRowView[]): string[] {
  const sized = rows.flatMap((r) => {
    const m = CMD_ROW.exec(r.id);
    return m ? [{ r, bytes: Number(m[1]) * (m[2] === 'k' ? 1024 : 1024 * 1024), label: `${m[1]} ${m[2] === 'k' ? 'KiB' : 'MiB'}` }] : [];
  });
  if (sized.length === 0) return [];
  sized.sort((a, b) => a.bytes - b.bytes);
  const mbs = (v: number) => `${v.toFixed(0)}`;
  return [
    '<h2>Throughput vs command size</h2>',
    columns({ name: 'cmd-size', title: 'P2P DMA throughput by command size (median, min-max)', points: sized.map((s) => ({ label: s.label, value: s.r.median, min: s.r.min, max: s.r.max })), format: mbs, yLabel: 'MB/s', xLabel: 'bytes per command' }),
    '<p class="note">nic0 reads a peer\'s exported VMA by VA, TLB warm (bench rows dma.p2p.cmd.*). Small commands pay the per-command cost (doorbell, decode, translation, completion) on few bytes; the bars are wall-clock rates of the emulator on this host, shared with other processes.</p>',
  ];
}

/** The page around a report's body: inline CSS only, no script. */
export function reportPage(title: string, body: readonly string[]): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(title)}</title>
<style>
body { font-family: Helvetica, Arial, sans-serif; margin: 24px; color: #222; max-width: 1200px; }
h1 { font-size: 20px; } h2 { font-size: 16px; margin-top: 28px; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 8px 0; font-size: 12px; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: right; } th:first-child, td:first-child { text-align: left; }
caption { text-align: left; font-weight: bold; padding: 4px 0; }
td.headline { font-weight: bold; }
svg.chart { display: block; margin: 10px 0 18px; }
.topo svg { max-width: 100%; height: auto; }
.note { color: #555; font-size: 12px; }
</style></head>
<body>
${body.join('\n')}
</body></html>
`;
}

export function renderReport(input: ReportInput): string {
  const cs = input.comparisons;
  const pairs = (f: (r: RunReport) => number) => cs.map((c) => ({ label: c.p2p.scenario, values: [f(c.p2p), f(c.bounce)] }));
  const charts = [
    groupedBars({ name: 'throughput', title: 'Real throughput (emulator, wall clock)', series: ['p2p', 'bounce'], groups: pairs(throughput), format: mbs }),
    groupedBars({ name: 'modeled', title: 'Modeled PCIe time of the same transfers (virtual)', series: ['p2p', 'bounce'], groups: pairs(modeledMs), format: ms }),
    groupedBars({ name: 'ram', title: 'System RAM traffic', series: ['p2p', 'bounce'], groups: pairs((r) => r.accounting.ramBytes), format: formatBytes }),
  ];
  const stageRows = cs.flatMap((c) =>
    [c.p2p, c.bounce].map((r) => {
      const s = stageSums(r.accounting);
      return { label: `${r.scenario} ${r.mode}`, values: [s.computeMs, s.dmaMs, s.faultWaitMs, s.mapMs, s.invalidationMs] };
    }),
  );
  const stages = stackedBars({ name: 'stages', title: 'Where the time goes (device sums and kernel time, ms)', parts: STAGES, rows: stageRows, format: ms });
  const compared = cs.length === 0 ? [] : [
    '<h2>Headline</h2>',
    `<table class="headline"><tr><th>scenario</th><th>throughput p2p</th><th>throughput bounce</th><th>p2p / bounce</th><th>modeled PCIe p2p</th><th>modeled PCIe bounce</th><th>RAM traffic p2p</th><th>RAM traffic bounce</th><th>RAM saved by p2p</th></tr>${cs.map(headline).join('')}</table>`,
    '<p class="note">Real throughput is bytes moved through shared memory by the device workers per second of wall time on this host; modeled PCIe time is the virtual time of the same transfers on the modeled links. The two are never mixed.</p>',
    '<h2>P2P vs bounce</h2>',
    ...charts,
    '<h2>Time per stage</h2>',
    stages,
    '<h2>Invalidation ack latency</h2>',
    ...cs.map(ackChart),
    '<h2>PCIe link utilisation (modeled)</h2>',
    ...cs.map(linkChart),
  ];
  const body = [
    `<h1>${esc(input.title)}</h1>`,
    ...(input.notes ?? []).map((n) => `<p class="note">${esc(n)}</p>`),
    ...compared,
    ...cmdSizeSection(input.benchRows ?? []),
    ...(input.benchRows ? ['<h2>Bench rows</h2>', benchTable(input.benchRows)] : []),
    ...(input.topology ? ['<h2>Topology and P2P matrix</h2>', `<div class="topo">${renderTopoSvg(input.topology.graph, `PCIe topology of ${input.topology.source}`)}</div>`] : []),
    ...(cs.length === 0 ? [] : ['<h2>Devices</h2>', ...cs.flatMap((c) => [deviceTable(c.p2p), deviceTable(c.bounce)])]),
    ...(cmdSizeSection(input.benchRows ?? []).length > 0 ? [] : ['<p class="note">Not in this report: throughput against command size (a sweep: see <code>peervma bench --only dma --report FILE</code>).</p>']),
  ];
  return reportPage(input.title, body);
}

/** The report of p2p/bounce pairs of one scenario, with its topology; for run --compare, bench and stress. */
export function writeReport(file: string, sc: Scenario, pairs: readonly (readonly [RunReport, RunReport])[], notes: readonly string[] = []): void {
  const fabric = buildFabric(sc.topology, sc.devices.map((d) => d.name), sc.seed);
  const names = fabric.endpoints().map((d) => fabric.nameOf(d));
  const html = renderReport({
    title: `peervma: ${sc.name}, p2p vs bounce`,
    comparisons: pairs.map(([p2p, bounce]) => ({ p2p, bounce })),
    topology: { graph: topoGraph(fabric, names), source: sc.name },
    notes: [sc.description, ...notes].filter(Boolean),
  });
  writeOutputFile(file, html);
}
