/*
 * Parsers for real `lspci -tv` (tree) and `lspci -vvv` (verbose) output,
 * and their conversion to a TopologySpec, so `peervma topo --lspci` can
 * answer "can these two devices of my machine do P2P, and why not?".
 *
 * Mirrors: pciutils ls-tree.c show_tree_bridge()/show_tree_bus()/
 * show_tree_dev() (the format we read), ls-caps.c cap_express() (the
 * "Express (v2) Root Port" line, LnkSta) and cap_acs() ("ACSCap:",
 * "ACSCtl:" lines).
 *
 * Tree format, as ls-tree.c prints it:
 *   -[0000:00]-+-00.0  Name                   one root bus
 *   -+-[0000:d7]-+-00.0-[d8]----00.0  Name    several root buses
 *    |           \-05.0  Name
 *   A bridge prints "-[sec]-" or "-[sec-sub]-" then its bus; a bus with one
 *   device continues "--", with several "+-" … "\-" on following lines,
 *   which keep the prefix with '+'/'|' turned into '|' and the rest blank.
 *   Hence the rule used here: the functions of a bus start at a fixed
 *   column: 4 after the ']' of a root-bus marker, 5 after the ']' of a
 *   bridge's bus range. Bridges print no name; `-nn` adds "[vvvv:dddd]".
 *
 * Invariants: every error names the file, the 1-based line and what was
 * expected; nothing is guessed silently — conversion notes say what was
 * assumed (missing -vvv, unknown ids).
 */
import { parseAcsLspci, formatAcs, acsBitsOf, type AcsBit } from './acs.js';
import { genFromLspciSpeed } from './pcie_link.js';
import { AMD_ZEN_ROOT_COMPLEXES } from './p2pdma.js';
import { TopologySchema, type EndpointSpec, type PolicyMode, type PortSpec, type SwitchSpec, type TopologySpec } from './topology_schema.js';
import { formatBdf } from './pci_tree.js';

export class LspciParseError extends Error {
  constructor(
    readonly file: string,
    readonly line: number,
    message: string,
  ) {
    super(`${file}:${line}: ${message}`);
    this.name = 'LspciParseError';
  }
}

export interface LspciTreeFn {
  domain: number;
  bus: number;
  dev: number;
  fn: number;
  bdf: string;
  name?: string;
  id?: string;
  /** Bridges: secondary/subordinate bus. */
  secondary?: number;
  subordinate?: number;
  /** Functions on the secondary bus (bridges only). */
  children: LspciTreeFn[];
  line: number;
}

export interface LspciRootBus {
  domain: number;
  bus: number;
  functions: LspciTreeFn[];
  line: number;
}

const ID_RE = /\s*\[([0-9a-fA-F]{4}):([0-9a-fA-F]{4})\]\s*$/;

/** Parse `lspci -tv` / `-tvnn` / `-t` output. */
export function parseLspciTree(text: string, file = '<lspci -tv>'): LspciRootBus[] {
  const roots: LspciRootBus[] = [];
  const seen = new Map<string, number>();
  // column → bus whose functions start there (domain, bus, where to attach)
  const ctx = new Map<number, { domain: number; bus: number; attach: LspciTreeFn[] }>();
  const lines = text.split(/\r?\n/);
  let sawAny = false;
  lines.forEach((line, idx) => {
    const ln = idx + 1;
    if (line.trim() === '') return;
    let i = 0;
    let lastWasLeaf = false;
    while (i < line.length) {
      const ch = line[i];
      if (ch === ' ' || ch === '|' || ch === '+' || ch === '\\' || ch === '-') {
        i++;
        continue;
      }
      const rest = line.slice(i);
      const root = /^\[([0-9a-fA-F]{4}):([0-9a-fA-F]{2})\]/.exec(rest);
      if (root) {
        const r: LspciRootBus = { domain: parseInt(root[1], 16), bus: parseInt(root[2], 16), functions: [], line: ln };
        roots.push(r);
        ctx.set(i + 8 + 4, { domain: r.domain, bus: r.bus, attach: r.functions });
        i += root[0].length;
        sawAny = true;
        continue;
      }
      const dev = /^([0-9a-fA-F]{2})\.([0-7])(?=$|\s|-)/.exec(rest);
      if (dev) {
        const parent = ctx.get(i);
        if (!parent) {
          throw new LspciParseError(
            file,
            ln,
            `function ${dev[0]} at column ${i + 1} does not hang off any bus (expected the tree of \`lspci -tv\`; is the indentation intact?)`,
          );
        }
        const before = line.slice(Math.max(0, i - 2), i);
        if (!/^[+\\-]-$/.test(before)) {
          throw new LspciParseError(file, ln, `function ${dev[0]} at column ${i + 1} is not preceded by "+-", "\\-" or "--" (got "${before}")`);
        }
        const f: LspciTreeFn = {
          domain: parent.domain,
          bus: parent.bus,
          dev: parseInt(dev[1], 16),
          fn: parseInt(dev[2], 10),
          bdf: formatBdf(parent.domain, parent.bus, parseInt(dev[1], 16), parseInt(dev[2], 10)),
          children: [],
          line: ln,
        };
        if (seen.has(f.bdf)) throw new LspciParseError(file, ln, `${f.bdf} appears twice (first on line ${seen.get(f.bdf)})`);
        seen.set(f.bdf, ln);
        parent.attach.push(f);
        i += dev[0].length;
        const br = /^-\[([0-9a-fA-F]{2})(?:-([0-9a-fA-F]{2}))?\]-/.exec(line.slice(i));
        if (br) {
          f.secondary = parseInt(br[1], 16);
          f.subordinate = br[2] ? parseInt(br[2], 16) : f.secondary;
          const close = i + br[0].length - 2; // index of ']'
          ctx.set(close + 5, { domain: f.domain, bus: f.secondary, attach: f.children });
          i += br[0].length;
          lastWasLeaf = false;
          continue;
        }
        const tail = line.slice(i);
        if (tail === '') break;
        const nm = /^ {2}(\S.*)$/.exec(tail);
        if (!nm) throw new LspciParseError(file, ln, `after function ${dev[0]} expected two spaces and a name, or a bridge "-[bus]-", got "${tail.slice(0, 20)}"`);
        let name = nm[1].trim();
        const id = ID_RE.exec(name);
        if (id) {
          f.id = `${id[1]}:${id[2]}`.toLowerCase();
          name = name.slice(0, id.index).trim();
        }
        f.name = name;
        lastWasLeaf = true;
        break;
      }
      throw new LspciParseError(file, ln, `unexpected "${rest.slice(0, 24)}" at column ${i + 1} (expected a tree of \`lspci -tv\`: "-[0000:00]-+-00.0  Name")`);
    }
    void lastWasLeaf;
  });
  if (!sawAny) throw new LspciParseError(file, 1, 'no root bus found: expected `lspci -tv` output starting with "-[0000:00]-" or "-+-[0000:00]-"');
  return roots;
}

export interface LspciVerboseFn {
  bdf: string;
  line: number;
  classLabel: string;
  name: string;
  id?: string;
  /** "Root Port", "Upstream Port", "Downstream Port", "Endpoint", … */
  expressType?: string;
  acsCap?: number;
  acsCtl?: number;
  link?: { gen: number; width: number };
}

/** Parse `lspci -vvv` (optionally -nn, -D): one block per function. */
export function parseLspciVerbose(text: string, file = '<lspci -vvv>'): Map<string, LspciVerboseFn> {
  const out = new Map<string, LspciVerboseFn>();
  let cur: LspciVerboseFn | null = null;
  const lines = text.split(/\r?\n/);
  lines.forEach((line, idx) => {
    const ln = idx + 1;
    if (line.trim() === '') return;
    if (!/^\s/.test(line)) {
      const h = /^(?:([0-9a-fA-F]{4}):)?([0-9a-fA-F]{2}):([0-9a-fA-F]{2})\.([0-7]) (.+?)(?: \[[0-9a-fA-F]{4}\])?: (.*)$/.exec(line);
      if (!h) throw new LspciParseError(file, ln, `expected a device header like "00:01.0 PCI bridge: Name", got "${line.slice(0, 40)}"`);
      const bdf = formatBdf(h[1] ? parseInt(h[1], 16) : 0, parseInt(h[2], 16), parseInt(h[3], 16), parseInt(h[4], 10));
      let name = h[6].replace(/\s*\((rev|prog-if) [^)]*\)/g, '').trim();
      let id: string | undefined;
      const m = ID_RE.exec(name);
      if (m) {
        id = `${m[1]}:${m[2]}`.toLowerCase();
        name = name.slice(0, m.index).trim();
      }
      cur = { bdf, line: ln, classLabel: h[5], name, id };
      out.set(bdf, cur);
      return;
    }
    if (!cur) throw new LspciParseError(file, ln, 'indented line before any device header');
    const c: LspciVerboseFn = cur;
    const t = line.trim();
    const ex = /^Capabilities: \[[0-9a-f]+\] Express \(v\d\) (.+?)(?: \(Slot[+-]\))?, /.exec(t);
    if (ex) c.expressType = ex[1];
    const acs = /^(ACSCap|ACSCtl):\s*(.*)$/.exec(t);
    if (acs) {
      const mask = parseAcsLspci(acs[2]);
      if (mask === null) throw new LspciParseError(file, ln, `cannot read ${acs[1]} flags "${acs[2]}" (expected e.g. "SrcValid+ TransBlk- ReqRedir+ CmpltRedir+ UpstreamFwd+ EgressCtrl- DirectTrans-")`);
      if (acs[1] === 'ACSCap') c.acsCap = mask;
      else c.acsCtl = mask;
    }
    const lnk = /^LnkSta:\s*Speed ([0-9.]+GT\/s)[^,]*, Width x(\d+)/.exec(t);
    if (lnk) {
      const gen = genFromLspciSpeed(lnk[1]);
      const width = parseInt(lnk[2], 10);
      if (gen && width > 0) c.link = { gen, width };
    }
  });
  return out;
}

export interface LspciImportOptions {
  /** IOMMU on for every root complex (pci_enable_acs() is applied on top of the captured ACSCtl). */
  iommu?: boolean;
  /** true/false, or 'auto' = recognise AMD Zen root complexes. Default 'auto'. */
  cpuRoutesP2p?: boolean | 'auto';
  disableAcsRedir?: string[];
  policy?: PolicyMode;
}

export interface LspciImport {
  spec: TopologySpec;
  /** What was assumed or recognised, for the user. */
  notes: string[];
}

const toBits = (m: number): AcsBit[] => acsBitsOf(m);

/** Convert parsed lspci output to a TopologySpec. */
export function lspciToTopology(roots: LspciRootBus[], verbose: Map<string, LspciVerboseFn> | null, opts: LspciImportOptions = {}): LspciImport {
  const notes: string[] = [];
  const v = (bdf: string) => verbose?.get(bdf);
  const isBridge = (f: LspciTreeFn) => f.secondary !== undefined;
  const idOf = (f: LspciTreeFn) => v(f.bdf)?.id ?? f.id;
  const nameOf = (f: LspciTreeFn) => f.name ?? v(f.bdf)?.name;
  if (!verbose) {
    notes.push('no `lspci -vvv` given: ACS assumed present on every port (SV RR CR UF) with nothing enabled, links assumed Gen4 x16; pass --lspci-vvv for the real ACSCtl bits and link speeds');
  }
  let missingAcs = 0;
  const acsOf = (f: LspciTreeFn): PortSpec['acs'] => {
    if (!verbose) return undefined;
    const x = v(f.bdf);
    if (!x) {
      missingAcs++;
      return undefined;
    }
    if (x.acsCap === undefined) return false;
    return { cap: toBits(x.acsCap), ctl: toBits((x.acsCtl ?? 0) & x.acsCap) };
  };
  const linkOf = (f: LspciTreeFn): PortSpec['link'] => {
    const l = v(f.bdf)?.link;
    return l ? ({ gen: l.gen, width: l.width } as PortSpec['link']) : undefined;
  };

  const endpointsOf = (fns: LspciTreeFn[]): EndpointSpec[] => {
    const bySlot = new Map<number, LspciTreeFn[]>();
    for (const f of fns) (bySlot.get(f.dev) ?? bySlot.set(f.dev, []).get(f.dev)!).push(f);
    return [...bySlot].map(([dev, list]) => ({
      slot: dev.toString(16).padStart(2, '0'),
      functions: list.map((f) => {
        const x = v(f.bdf);
        return {
          fn: f.fn,
          name: nameOf(f),
          id: idOf(f),
          acs: x?.acsCap !== undefined ? { cap: toBits(x.acsCap), ctl: toBits((x.acsCtl ?? 0) & x.acsCap) } : undefined,
        };
      }),
    }));
  };

  const portOf = (f: LspciTreeFn): PortSpec => {
    const p: PortSpec = {
      slot: `${f.dev.toString(16).padStart(2, '0')}.${f.fn}`,
      bus: f.secondary,
      id: idOf(f),
      name: nameOf(f),
      link: linkOf(f),
      acs: acsOf(f),
    };
    const below = f.children;
    if (!below.length) return p;
    const bridges = below.filter(isBridge);
    if (bridges.length) {
      if (bridges.length > 1 || below.length > 1 || bridges[0].dev !== 0) {
        notes.push(`${f.bdf}: several functions below one port, some of them bridges; treated as one switch upstream port ${bridges[0].bdf}`);
      }
      const up = bridges[0];
      const sw: SwitchSpec = {
        name: nameOf(up) ?? `switch@${up.bdf}`,
        id: idOf(up),
        bus: up.secondary,
        upstreamAcs: acsOf(up) ?? false,
        ports: up.children.filter(isBridge).map(portOf),
      };
      const eps = up.children.filter((c) => !isBridge(c));
      if (eps.length) sw.endpoints = endpointsOf(eps);
      p.switch = sw;
      return p;
    }
    const eps = endpointsOf(below);
    if (eps.length > 1) notes.push(`${f.bdf}: functions in more than one slot below one port; only slot ${eps[0].slot} kept`);
    p.endpoint = eps[0];
    return p;
  };

  let zen: string | undefined;
  const sorted = [...roots].sort((a, b) => a.domain - b.domain || a.bus - b.bus);
  const rootComplexes = sorted.map((r) => {
    const first = r.functions.find((f) => f.dev === 0 && f.fn === 0);
    const hbId = first ? idOf(first) : undefined;
    const hbName = first ? nameOf(first) : undefined;
    const amd = AMD_ZEN_ROOT_COMPLEXES.find((z) => z.id === hbId);
    if (amd) zen ??= `${amd.name} (${amd.id})`;
    else if (hbName && /Advanced Micro Devices|\[AMD\]/.test(hbName) && /Root Complex/.test(hbName) && /(Family 1[7-9a-f]h|Starship|Matisse|Renoir|Cezanne|Raven|Raphael|Phoenix|Genoa|Rome|Milan|Vermeer)/.test(hbName)) {
      zen ??= hbName;
    }
    if (!hbId) {
      notes.push(`root bus ${formatBdf(r.domain, r.bus, 0, 0).slice(0, 7)}: host bridge vendor:device unknown${verbose ? '' : ' (use `lspci -tvnn` or pass `lspci -nnvvv` output)'}, so it cannot match the P2PDMA whitelist`);
    }
    return {
      // Linux names a host bridge after its root bus: pci0000:00
      name: `pci${formatBdf(r.domain, r.bus, 0, 0).slice(0, 7)}`,
      domain: r.domain,
      bus: r.bus,
      iommu: opts.iommu ?? false,
      ports: r.functions.filter(isBridge).map(portOf),
      endpoints: endpointsOf(r.functions.filter((f) => !isBridge(f))),
    };
  });
  if (verbose && missingAcs) notes.push(`${missingAcs} bridge(s) missing from the -vvv output; their ACS was assumed as without -vvv`);
  let cpu = false;
  if (opts.cpuRoutesP2p === true) cpu = true;
  else if (opts.cpuRoutesP2p !== false && zen) {
    cpu = true;
    notes.push(`recognised an AMD Zen root complex (${zen}): the CPU routes P2P through its host bridge (cpu_supports_p2pdma()); override with --no-cpu-routes-p2p`);
  }
  const spec = TopologySchema.parse({
    policy: opts.policy ?? 'iommu',
    cpuRoutesP2p: cpu,
    disableAcsRedir: opts.disableAcsRedir ?? [],
    rootComplexes,
  });
  return { spec, notes };
}

/** Convenience: both texts → import. */
export function importLspci(treeText: string, verboseText: string | null, opts: LspciImportOptions = {}, files: { tree?: string; verbose?: string } = {}): LspciImport {
  const roots = parseLspciTree(treeText, files.tree);
  const verbose = verboseText === null ? null : parseLspciVerbose(verboseText, files.verbose);
  return lspciToTopology(roots, verbose, opts);
}

/** For --explain output: "ACSCtl: ReqRedir+ CmpltRedir+" of a verbose entry. */
export function describeVerboseAcs(x: LspciVerboseFn): string {
  return x.acsCap === undefined ? 'no ACS capability' : `ACSCap ${formatAcs(x.acsCap)}, ACSCtl ${formatAcs(x.acsCtl ?? 0)}`;
}
