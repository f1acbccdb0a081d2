/*
 * `peervma topo <scenario>` / `peervma topo --lspci tree.txt [--lspci-vvv v.txt]`:
 * the PCIe tree, the IOMMU groups and the provider × client P2P matrix;
 * `--explain A B` for the path and the reason; `--json` for scripts.
 *
 * Errors: "peervma topo: <message>" on stderr, exit code 2 for bad input
 * (usage, unreadable or invalid files), 1 for anything else. No stack
 * traces for user errors.
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import { importLspci, LspciParseError } from '../hw/lspci.js';
import { buildFabric, buildFabricUnchecked, FabricError, TopologyError, type Fabric } from '../hw/topology.js';
import type { PolicyMode, TopologySpec } from '../hw/topology_schema.js';
import { InputError, ScenarioError } from '../errors.js';
import { readInputFileSync } from '../scenario/input_file.js';
import { internalErrorLine } from './internal_error.js';
import { parseScenario } from '../scenario/load.js';
import { applyAcsRedir, applyHostBridges, applyIommuPerRc, applySockets, StateFlagError } from './topo_state_flags.js';
import { inputAssumptions, verdictAssumptions, type InputFacts } from '../hw/assumptions.js';
import { renderExplain, renderGroups, renderMatrix, renderPorts, renderTreeFitted, topoJson } from '../hw/topo_report.js';
import { renderTopoPicture, TOPO_FORMATS, type TopoFormat } from '../trace/topo_format.js';
import { paragraph, terminalColumns } from '../trace/text_layout.js';

class UsageError extends Error {}

export interface TopoFlags {
  lspci?: string;
  lspciVvv?: string;
  iommu?: 'on' | 'off';
  policy?: PolicyMode;
  cpuRoutesP2p?: boolean;
  disableAcsRedir?: string;
  devices?: string;
  explain?: string[];
  json?: boolean;
  format?: TopoFormat;
  hostBridge?: string;
  iommuRc?: string;
  acsRedir?: string;
  socket?: string;
}

/** The parts of a scenario `topo` needs, validated exactly as `peervma run` validates the file. */
function readScenarioTopology(file: string): { devices: string[]; seed: number; topology?: TopologySpec } {
  const text = readInputFileSync(file, 'scenario file');
  try {
    const sc = parseScenario(text, file);
    return { devices: sc.devices.map((d) => d.name), seed: sc.seed, topology: sc.topology };
  } catch (e) {
    if (e instanceof ScenarioError) throw new UsageError(e.message);
    throw e;
  }
}

function splitList(s: string | undefined): string[] {
  return s ? s.split(/[;,]/).map((x) => x.trim()).filter(Boolean) : [];
}

/** Build the fabric the flags describe, plus notes for the user and what the input left to assume. */
export function topoFabric(scenario: string | undefined, flags: TopoFlags): { fabric: Fabric; notes: string[]; source: string; facts: InputFacts } {
  const notes: string[] = [];
  if (flags.lspci) {
    if (scenario) throw new UsageError('give either a scenario or --lspci, not both');
    const tree = readInputFileSync(flags.lspci, '--lspci file');
    const verbose = flags.lspciVvv ? readInputFileSync(flags.lspciVvv, '--lspci-vvv file') : null;
    // `lspci -tvnn > tree.txt` without pciutils installed leaves an empty file and no other sign.
    for (const [f, text, how] of [[flags.lspci, tree, '-tvnn'], [flags.lspciVvv, verbose, '-nnvvv']] as const)
      if (text !== null && text.trim() === '') throw new UsageError(`${f} is empty: capture it with \`lspci ${how} > ${f}\` (lspci comes with pciutils: apt-get install pciutils)`);
    const imp = importLspci(
      tree,
      verbose,
      {
        iommu: flags.iommu === 'on',
        cpuRoutesP2p: flags.cpuRoutesP2p ?? 'auto',
        disableAcsRedir: splitList(flags.disableAcsRedir),
        policy: flags.policy ?? 'iommu',
      },
      { tree: flags.lspci, verbose: flags.lspciVvv },
    );
    notes.push(...imp.notes);
    try {
      applyHostBridges(imp.spec, flags.hostBridge);
      applyIommuPerRc(imp.spec, flags.iommuRc);
      applyAcsRedir(imp.spec, flags.acsRedir);
      for (const name of applySockets(imp.spec, flags.socket)) {
        imp.sockets.assumed = imp.sockets.assumed.filter((n) => n !== name);
        imp.sockets.numa.delete(name);
      }
    } catch (e) {
      if (e instanceof StateFlagError) throw new UsageError(e.message);
      throw e;
    }
    const facts: InputFacts = {
      iommuAssumed: flags.iommu === undefined && flags.iommuRc === undefined,
      cpuRouting: flags.cpuRoutesP2p !== undefined ? 'flag' : imp.spec.cpuRoutesP2p ? 'recognised' : 'assumed',
      lspci: true,
      sockets: imp.sockets,
    };
    const fabric = buildFabricUnchecked(imp.spec, 0, 'lspci'); // fixes worded as topo flags (fix_hints.ts)
    return { fabric, notes, source: flags.lspci, facts };
  }
  if (flags.lspciVvv) throw new UsageError('--lspci-vvv needs --lspci <tree.txt> as well');
  if (!scenario) throw new UsageError('give a scenario file or --lspci <tree.txt> (see peervma topo --help)');
  const sc = readScenarioTopology(scenario);
  let spec = sc.topology;
  if (!spec) notes.push('no topology: in the scenario — default topology (one root complex, one switch, every device below it)');
  if (spec && (flags.policy || flags.iommu || flags.cpuRoutesP2p !== undefined || flags.disableAcsRedir)) {
    spec = {
      ...spec,
      policy: flags.policy ?? spec.policy,
      cpuRoutesP2p: flags.cpuRoutesP2p ?? spec.cpuRoutesP2p,
      disableAcsRedir: flags.disableAcsRedir !== undefined ? splitList(flags.disableAcsRedir) : spec.disableAcsRedir,
      rootComplexes: spec.rootComplexes.map((r) => ({ ...r, iommu: flags.iommu ? flags.iommu === 'on' : r.iommu })),
    };
  } else if (!spec && (flags.policy || flags.iommu || flags.cpuRoutesP2p !== undefined || flags.disableAcsRedir)) {
    notes.push('--policy/--iommu/--cpu-routes-p2p/--disable-acs-redir apply to an explicit topology only; ignored');
  }
  if (flags.hostBridge || flags.iommuRc || flags.acsRedir || flags.socket) throw new UsageError('--host-bridge, --iommu-rc, --acs-redir and --socket apply to --lspci captures; a scenario states these as topology keys (rootComplexes[].id, .iommu, .socket, ports[].acs)');
  return { fabric: buildFabric(spec, sc.devices, sc.seed), notes, source: scenario, facts: { iommuAssumed: false, cpuRouting: 'scenario', lspci: false } };
}

/** Lines longer than `cols` wrapped under themselves, indented two more (for --explain's free text). */
function fit(text: string, cols: number): string {
  return text
    .split('\n')
    .map((l) => {
      const indent = /^ */.exec(l)![0].length;
      return [...l].length <= cols ? l : paragraph(l.trimStart(), cols, indent, indent + 2);
    })
    .join('\n');
}

/** The output of `peervma topo`; text fits `cols` columns ($COLUMNS, default 100) but the lspci tree of a very deep fabric. */
export function runTopo(scenario: string | undefined, flags: TopoFlags, cols = terminalColumns()): string {
  const { fabric, notes, source, facts } = topoFabric(scenario, flags);
  let names = fabric.endpoints().map((d) => fabric.nameOf(d));
  if (flags.devices) {
    names = splitList(flags.devices);
    for (const n of names) if (!fabric.resolve(n)) throw new UsageError(`--devices: '${n}' is not a device of ${source}`);
    names = names.map((n) => fabric.nameOf(fabric.resolve(n)!));
  }
  if (flags.explain) {
    if (flags.explain.length !== 2) throw new UsageError(`--explain takes two devices (provider client), got ${flags.explain.length}`);
    const [a, b] = flags.explain;
    for (const n of [a, b]) if (!fabric.resolve(n)) throw new UsageError(`--explain: '${n}' is not a device of ${source} (devices: ${names.join(', ')})`);
    const assumptions = verdictAssumptions(fabric, a, b, facts);
    if (flags.json) {
      const v = fabric.mapType(a, b);
      return JSON.stringify({ provider: a, client: b, ...v, assumptions, notes, iommuGroups: [fabric.iommuGroupOf(a), fabric.iommuGroupOf(b)] }, null, 2);
    }
    const text = [fit(renderExplain(fabric, a, b), cols)];
    if (assumptions.length) text.push(['assumptions:', ...assumptions.map((x) => paragraph(`- ${x}`, cols, 2, 4))].join('\n'));
    if (notes.length) text.push(['notes on the input:', ...notes.map((x) => paragraph(`- ${x}`, cols, 2, 4))].join('\n'));
    return text.join('\n');
  }
  const assumptions = inputAssumptions(fabric, facts);
  if (flags.json || flags.format === 'json') {
    const pairs = names.flatMap((p) => names.filter((c) => c !== p).map((c) => ({ provider: p, client: c, assumptions: verdictAssumptions(fabric, p, c, facts) })));
    return JSON.stringify(topoJson(fabric, names, { source, notes, assumptions, pairAssumptions: pairs.filter((x) => x.assumptions.length > 0) }), null, 2);
  }
  if (flags.format === 'dot' || flags.format === 'svg') return renderTopoPicture(fabric, names, flags.format, source);
  const parts = [`# ${source}`];
  if (notes.length) parts.push(notes.map((n) => paragraph(`note: ${n}`, cols, 0, 2)).join('\n'));
  if (fabric.tree.warnings.length) parts.push(fabric.tree.warnings.map((w) => paragraph(`warning: ${w}`, cols, 0, 2)).join('\n'));
  const tree = renderTreeFitted(fabric, cols);
  parts.push(`## ${tree.title}`, tree.text);
  parts.push('## Root complexes and ports', renderPorts(fabric, cols));
  parts.push('## IOMMU groups', renderGroups(fabric, cols));
  parts.push('## P2P', names.length ? renderMatrix(fabric, names, cols) : '(no endpoints)');
  if (assumptions.length) parts.push('## Assumptions behind these verdicts', assumptions.map((x) => paragraph(`- ${x}`, cols, 0, 2)).join('\n'));
  return parts.join('\n\n');
}

export function registerTopo(program: Command): void {
  program
    .command('topo')
    .description('show the PCIe tree, IOMMU groups and the P2P matrix of a scenario or of a real machine (lspci output)')
    .argument('[scenario]', 'scenario YAML file')
    .option('--lspci <tree.txt>', 'build the topology from `lspci -tv` (or -tvnn) output instead of a scenario')
    .option('--lspci-vvv <verbose.txt>', 'with --lspci: `lspci -vvv` (or -nnvvv) output for ACSCtl bits, link speeds and ids')
    .addOption(new Option('--iommu <state>', 'IOMMU on/off (lspci import; overrides a scenario topology)').choices(['on', 'off']))
    .addOption(new Option('--policy <mode>', 'policy mode').choices(['rfc-v1', 'iommu']))
    .option('--cpu-routes-p2p', 'the CPU routes P2P through its host bridge (AMD Zen-like)')
    .option('--no-cpu-routes-p2p', 'the CPU does not route P2P (overrides AMD Zen detection)')
    .option('--host-bridge <list>', 'with --lspci: host bridge vendor:device of a root bus, BUS=VVVV:DDDD[,…] (when the capture lacks -nn)')
    .option('--iommu-rc <list>', 'with --lspci: IOMMU of one root complex, BUS=on|off[,…] (overrides --iommu there)')
    .option('--acs-redir <list>', 'with --lspci: ACS P2P redirect (RR CR) of a port as firmware left it, BDF=on|off[,…] (when -vvv is missing)')
    .option('--socket <list>', 'with --lspci: CPU socket of a root bus, BUS=N[,…] (when the capture has no "NUMA node:" lines, or nodes are not sockets)')
    .option('--disable-acs-redir <list>', 'kernel parameter pci=disable_acs_redir=<bdf;bdf…>')
    .option('--devices <list>', 'devices of the matrix, comma separated (default: every endpoint)')
    .option('--explain <devices...>', 'explain the verdict for provider A and client B: --explain A B')
    .option('--json', 'machine-readable output')
    .addOption(new Option('--format <format>', 'text (default), json (= --json), dot (Graphviz) or svg (a picture, drawn by peervma)').choices(TOPO_FORMATS))
    .action((scenario: string | undefined, flags: TopoFlags) => {
      try {
        process.stdout.write(runTopo(scenario, flags) + '\n');
      } catch (e) {
        if (e instanceof UsageError || e instanceof InputError || e instanceof LspciParseError || e instanceof TopologyError || e instanceof FabricError || e instanceof InvalidArgumentError) {
          process.stderr.write(`peervma topo: ${e.message}\n`);
          process.exitCode = 2;
          return;
        }
        process.stderr.write(internalErrorLine('peervma topo', e));
        process.exitCode = 1;
      }
    });
}
