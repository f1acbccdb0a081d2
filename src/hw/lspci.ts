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
import { parseAcsLspci, acsBitsOf, type AcsBit } from './acs.js';
import { genFromLspciSpeed } from './pcie_link.js';
import { AMD_ZEN_ROOT_COMPLEXES } from './p2pdma.js';
import { TopologySchema, type EndpointSpec, type PolicyMode, type PortSpec, type SwitchSpec, type TopologySpec } from './topology_schema.js';
import { formatBdf } from './pci_tree.js';
import { LspciParseError, type LspciRootBus, type LspciTreeFn } from './lspci_types.js';
import { classifyNoise, noiseNote } from './lspci_noise.js';
import { idFromUnnamedDevice } from './lspci_ids.js';
import { rebuildTree } from './lspci_rebuild.js';
import { assignSockets, type SocketSource } from './lspci_sockets.js';

export { LspciParseError, type LspciRootBus, type LspciTreeFn } from './lspci_types.js';

const ID_RE = /\s*\[([0-9a-fA-F]{4}):([0-9a-fA-F]{4})\]\s*$/;

/** Name and id of a function from the text after its BDF ("  Name [vvvv:dddd]", or "  Vendor Device 14a4"). */
function readName(f: LspciTreeFn, tail: string, file: string, ln: number): void {
  if (tail === '') return;
  const nm = /^ {2}(\S.*)$/.exec(tail) ?? /^\s+(\S.*)$/.exec(tail);
  if (!nm) throw new LspciParseError(file, ln, `after function ${f.bdf.slice(-4)} expected two spaces and a name, or a bridge "-[bus]-", got "${tail.slice(0, 20)}"`);
  let name = nm[1].trim();
  const id = ID_RE.exec(name);
  if (id) {
    f.id = `${id[1]}:${id[2]}`.toLowerCase();
    name = name.slice(0, id.index).trim();
  } else f.id = idFromUnnamedDevice(name);
  f.name = name;
}

/** Lines of a capture with the non-lspci ones (prompt, cut marks, pcilib warnings...) taken out, one note each. */
function lspciLines(text: string, file: string, notes: string[]): { text: string; ln: number }[] {
  const out: { text: string; ln: number }[] = [];
  text.split(/\r?\n/).forEach((line, idx) => {
    if (line.trim() === '') return;
    const noise = classifyNoise(line);
    if (noise) notes.push(noiseNote(file, idx + 1, line, noise.note));
    else out.push({ text: line.replace(/\t/g, '        ').replace(/\s+$/, ''), ln: idx + 1 });
  });
  return out;
}

/** A device header of plain `lspci` / `lspci -vvv` ("00:1f.3 Audio device: ..."), which a tree never has. */
const PLAIN_HEADER = /^(?:[0-9a-fA-F]{4}:)?[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7] \S/;

/** The text is a plain (non-tree) lspci listing: every device line is a header. */
function isPlainListing(text: string): boolean {
  const lines = text.split(/\r?\n/).filter((l) => l.trim() !== '' && !classifyNoise(l));
  return lines.length > 0 && PLAIN_HEADER.test(lines[0]) && !lines.some((l) => /^[\s|+\\-]*-\[[0-9a-fA-F]{4}:[0-9a-fA-F]{2}\]/.test(l));
}

/**
 * Parse `lspci -tv` / `-tvnn` / `-t` output. Non-lspci lines are skipped
 * with a note in `notes`; a tree whose indentation was lost is rebuilt from
 * its markers and bus brackets (lspci_rebuild.ts) when that is unambiguous.
 */
export function parseLspciTree(text: string, file = '<lspci -tv>', notes: string[] = []): LspciRootBus[] {
  const lines = lspciLines(text, file, notes);
  if (lines.length === 0) throw new LspciParseError(file, 1, 'no root bus found: expected `lspci -tv` output starting with "-[0000:00]-" or "-+-[0000:00]-"');
  if (PLAIN_HEADER.test(lines[0].text)) {
    throw new LspciParseError(file, lines[0].ln, 'this is a plain `lspci` listing, not a tree: capture `lspci -tvnn` for --lspci, or give `lspci -nnvvv` output to --lspci-vvv as well (its "Bus:" lines give the nesting)');
  }
  try {
    return parseByColumns(lines, file);
  } catch (e) {
    if (!(e instanceof LspciParseError) || !(e as LspciParseError & { indentation?: boolean }).indentation) throw e;
    let roots: LspciRootBus[];
    try {
      roots = rebuildTree(lines, file, (f, tail, ln) => readName(f, tail, file, ln));
    } catch (r) {
      if (!(r instanceof LspciParseError)) throw r;
      // Both readings failed: the column error says where, the rebuild why it cannot be guessed.
      throw new LspciParseError(file, e.line, `${e.message.slice(`${file}:${e.line}: `.length)}; ${r.message.slice(`${file}:${r.line}: `.length)}`);
    }
    notes.push(`${file}:${e.line}: the indentation of the tree is not lspci's (lost in a paste?): the tree was rebuilt from its "+-"/"\\-" markers and [bus] brackets`);
    return roots;
  }
}

/** An error that means "the columns do not line up": the tree may still be rebuilt from its markers. */
function indentationError(file: string, ln: number, message: string): LspciParseError {
  return Object.assign(new LspciParseError(file, ln, message), { indentation: true });
}

/** Where the functions of one bus hang: its domain and number, and the list they are added to. */
interface BusAnchor {
  domain: number;
  bus: number;
  attach: LspciTreeFn[];
}

/** Tree-drawing characters between the tokens of a line. */
const isTreeDrawing = (ch: string) => ch === ' ' || ch === '|' || ch === '+' || ch === '\\' || ch === '-';

/**
 * The column reading of a tree (see the file comment): each root-bus marker
 * and each bridge's bus range opens a bus whose functions start at a fixed
 * column; a function must sit on such a column after "+-", "\-" or "--".
 */
class ColumnTreeParser {
  readonly roots: LspciRootBus[] = [];
  private readonly seen = new Map<string, number>();
  /** column → the bus whose functions start there */
  private readonly ctx = new Map<number, BusAnchor>();

  constructor(private readonly file: string) {}

  line(line: string, ln: number): void {
    let i = 0;
    while (i < line.length) {
      if (isTreeDrawing(line[i])) {
        i++;
        continue;
      }
      const rest = line.slice(i);
      const root = /^\[([0-9a-fA-F]{4}):([0-9a-fA-F]{2})\]/.exec(rest);
      if (root) {
        this.rootBus(root, i, ln);
        i += root[0].length;
        continue;
      }
      const dev = /^([0-9a-fA-F]{2})\.([0-7])(?=$|\s|-)/.exec(rest);
      if (!dev) throw new LspciParseError(this.file, ln, `unexpected "${rest.slice(0, 24)}" at column ${i + 1} (expected a tree of \`lspci -tv\`: "-[0000:00]-+-00.0  Name")`);
      const f = this.fn(dev, line, i, ln);
      i += dev[0].length;
      const br = /^-\[([0-9a-fA-F]{2})(?:-([0-9a-fA-F]{2}))?\]-/.exec(line.slice(i));
      if (!br) {
        readName(f, line.slice(i), this.file, ln);
        return;
      }
      this.bridgeBus(f, br, i);
      i += br[0].length;
    }
  }

  /** "[dddd:bb]": a root bus; its functions start 4 columns after the ']'. */
  private rootBus(m: RegExpExecArray, col: number, ln: number): void {
    const r: LspciRootBus = { domain: parseInt(m[1], 16), bus: parseInt(m[2], 16), functions: [], line: ln };
    this.roots.push(r);
    this.ctx.set(col + 8 + 4, { domain: r.domain, bus: r.bus, attach: r.functions });
  }

  /** "dd.f" at column `col`: a function of the bus opened at that column. */
  private fn(m: RegExpExecArray, line: string, col: number, ln: number): LspciTreeFn {
    const parent = this.ctx.get(col);
    if (!parent) {
      throw indentationError(this.file, ln, `function ${m[0]} at column ${col + 1} does not hang off any bus (expected the tree of \`lspci -tv\`; is the indentation intact?)`);
    }
    const before = line.slice(Math.max(0, col - 2), col);
    if (!/^[+\\-]-$/.test(before)) {
      throw indentationError(this.file, ln, `function ${m[0]} at column ${col + 1} is not preceded by "+-", "\\-" or "--" (got "${before}")`);
    }
    const dev = parseInt(m[1], 16);
    const fn = parseInt(m[2], 10);
    const f: LspciTreeFn = { domain: parent.domain, bus: parent.bus, dev, fn, bdf: formatBdf(parent.domain, parent.bus, dev, fn), children: [], line: ln };
    if (this.seen.has(f.bdf)) throw new LspciParseError(this.file, ln, `${f.bdf} appears twice (first on line ${this.seen.get(f.bdf)})`);
    this.seen.set(f.bdf, ln);
    parent.attach.push(f);
    return f;
  }

  /** "-[ss]-" or "-[ss-uu]-" after bridge `f` at column `col`: its secondary bus, whose functions start 5 columns after the ']'. */
  private bridgeBus(f: LspciTreeFn, m: RegExpExecArray, col: number): void {
    f.secondary = parseInt(m[1], 16);
    f.subordinate = m[2] ? parseInt(m[2], 16) : f.secondary;
    const close = col + m[0].length - 2; // index of ']'
    this.ctx.set(close + 5, { domain: f.domain, bus: f.secondary, attach: f.children });
  }
}

function parseByColumns(lines: readonly { text: string; ln: number }[], file: string): LspciRootBus[] {
  const p = new ColumnTreeParser(file);
  for (const { text, ln } of lines) p.line(text, ln);
  if (p.roots.length === 0) throw new LspciParseError(file, 1, 'no root bus found: expected `lspci -tv` output starting with "-[0000:00]-" or "-+-[0000:00]-"');
  return p.roots;
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
  /** Bridges: "Bus: primary=00, secondary=01, subordinate=02". */
  secondary?: number;
  subordinate?: number;
  /** "NUMA node: N" (printed by -vvv when the firmware gives one). */
  numaNode?: number;
}

/** Parse `lspci -vvv` (optionally -nn, -D): one block per function. Non-lspci lines are skipped with a note in `notes`. */
export function parseLspciVerbose(text: string, file = '<lspci -vvv>', notes: string[] = []): Map<string, LspciVerboseFn> {
  const out = new Map<string, LspciVerboseFn>();
  let cur: LspciVerboseFn | null = null;
  const lines = text.split(/\r?\n/);
  lines.forEach((line, idx) => {
    const ln = idx + 1;
    if (line.trim() === '') return;
    const noise = classifyNoise(line);
    if (noise) {
      notes.push(noiseNote(file, ln, line, noise.note));
      return;
    }
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
      } else id = idFromUnnamedDevice(name);
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
    const bus = /^Bus: primary=([0-9a-fA-F]{2}), secondary=([0-9a-fA-F]{2}), subordinate=([0-9a-fA-F]{2})/.exec(t);
    if (bus) {
      c.secondary = parseInt(bus[2], 16);
      c.subordinate = parseInt(bus[3], 16);
    }
    const numa = /^NUMA node: (\d+)$/.exec(t);
    if (numa) c.numaNode = parseInt(numa[1], 10);
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
  /** How each root complex's socket was decided (see lspci_sockets.ts). */
  sockets: SocketSource;
}

const toBits = (m: number): AcsBit[] => acsBitsOf(m);
const isBridge = (f: LspciTreeFn) => f.secondary !== undefined;
const NO_VVV_NOTE = 'no `lspci -vvv` given: ACS assumed present on every port (SV RR CR UF) with nothing enabled, links assumed Gen4 x16; pass --lspci-vvv for the real ACSCtl bits and link speeds';

/**
 * One function of the tree as the spec needs it: id, name, ACS and link
 * from the -vvv entry where there is one, else from the tree. Notes what it
 * had to leave out or assume; counts bridges missing from the -vvv output.
 */
class LspciSpecReader {
  missingAcs = 0;

  constructor(
    private readonly verbose: Map<string, LspciVerboseFn> | null,
    private readonly notes: string[],
  ) {}

  private v(bdf: string): LspciVerboseFn | undefined {
    return this.verbose?.get(bdf);
  }

  idOf(f: LspciTreeFn): string | undefined {
    return this.v(f.bdf)?.id ?? f.id;
  }

  nameOf(f: LspciTreeFn): string | undefined {
    return f.name ?? this.v(f.bdf)?.name;
  }

  /** A bridge's ACS: undefined without -vvv (assumed later), false when -vvv shows no ACS capability. */
  acsOf(f: LspciTreeFn): PortSpec['acs'] {
    if (!this.verbose) return undefined;
    const x = this.v(f.bdf);
    if (!x) {
      this.missingAcs++;
      return undefined;
    }
    if (x.acsCap === undefined) return false;
    return { cap: toBits(x.acsCap), ctl: toBits((x.acsCtl ?? 0) & x.acsCap) };
  }

  linkOf(f: LspciTreeFn): PortSpec['link'] {
    const l = this.v(f.bdf)?.link;
    return l ? ({ gen: l.gen, width: l.width } as PortSpec['link']) : undefined;
  }

  /** Non-bridge functions grouped by slot (device number), functions in order. */
  endpointsOf(fns: LspciTreeFn[]): EndpointSpec[] {
    const bySlot = new Map<number, LspciTreeFn[]>();
    for (const f of fns) (bySlot.get(f.dev) ?? bySlot.set(f.dev, []).get(f.dev)!).push(f);
    return [...bySlot].map(([dev, list]) => ({
      slot: dev.toString(16).padStart(2, '0'),
      functions: list.map((f) => {
        const x = this.v(f.bdf);
        return {
          fn: f.fn,
          name: this.nameOf(f),
          id: this.idOf(f),
          acs: x?.acsCap !== undefined ? { cap: toBits(x.acsCap), ctl: toBits((x.acsCtl ?? 0) & x.acsCap) } : undefined,
        };
      }),
    }));
  }

  /** A root or switch downstream port and what is below it: a switch, or one endpoint slot. */
  portOf(f: LspciTreeFn): PortSpec {
    const p: PortSpec = {
      slot: `${f.dev.toString(16).padStart(2, '0')}.${f.fn}`,
      bus: f.secondary,
      id: this.idOf(f),
      name: this.nameOf(f),
      link: this.linkOf(f),
      acs: this.acsOf(f),
    };
    const below = f.children;
    if (!below.length) return p;
    if (below.some(isBridge)) {
      p.switch = this.switchBelow(f);
      return p;
    }
    const eps = this.endpointsOf(below);
    if (eps.length > 1) this.notes.push(`${f.bdf}: functions in more than one slot below one port; only slot ${eps[0].slot} kept`);
    p.endpoint = eps[0];
    return p;
  }

  /** The switch below port `f` (which has a bridge below it): its upstream port is 00.0, else the first bridge. */
  private switchBelow(f: LspciTreeFn): SwitchSpec {
    const below = f.children;
    const bridges = below.filter(isBridge);
    const up = bridges.find((b) => b.dev === 0 && b.fn === 0) ?? bridges[0];
    if (bridges.length > 1) {
      this.notes.push(`${f.bdf}: ${bridges.length} bridges below one port (${bridges.map((b) => b.bdf).join(', ')}); ${up.bdf} is modelled as the switch upstream port, the others and what is below them are left out`);
    }
    if (up.dev !== 0 || up.fn !== 0) this.notes.push(`${f.bdf}: the switch upstream port is ${up.bdf}, modelled at 00.0 of its bus`);
    const sw: SwitchSpec = {
      name: this.nameOf(up) ?? `switch@${up.bdf}`,
      id: this.idOf(up),
      bus: up.secondary,
      upstreamAcs: this.acsOf(up) ?? false,
      ports: up.children.filter(isBridge).map((c) => this.portOf(c)),
    };
    const eps = up.children.filter((c) => !isBridge(c));
    if (eps.length) sw.endpoints = this.endpointsOf(eps);
    // Functions on the port's bus beside the upstream port (a switch's
    // management endpoint at function 1, say) stay in the tree.
    const beside = below.filter((c) => !isBridge(c));
    if (beside.length) sw.beside = this.endpointsOf(beside);
    return sw;
  }

  /** One root bus → one root complex (named like Linux: pci0000:00); notes an unknown host bridge id. */
  rootComplexOf(r: LspciRootBus, iommu: boolean) {
    const first = r.functions.find((f) => f.dev === 0 && f.fn === 0);
    if (!(first && this.idOf(first))) {
      this.notes.push(`root bus ${formatBdf(r.domain, r.bus, 0, 0).slice(0, 7)}: host bridge vendor:device unknown${this.verbose ? '' : ' (use `lspci -tvnn` or pass `lspci -nnvvv` output)'}, so it cannot match the P2PDMA whitelist`);
    }
    return {
      name: `pci${formatBdf(r.domain, r.bus, 0, 0).slice(0, 7)}`,
      domain: r.domain,
      bus: r.bus,
      iommu,
      ports: r.functions.filter(isBridge).map((f) => this.portOf(f)),
      endpoints: this.endpointsOf(r.functions.filter((f) => !isBridge(f))),
    };
  }

  /** The first AMD Zen root complex among the root buses (by id, else by lspci's name for it), for cpu_supports_p2pdma(). */
  zenRootComplex(roots: readonly LspciRootBus[]): string | undefined {
    for (const r of roots) {
      const first = r.functions.find((f) => f.dev === 0 && f.fn === 0);
      if (!first) continue;
      const id = this.idOf(first);
      const name = this.nameOf(first);
      const amd = AMD_ZEN_ROOT_COMPLEXES.find((z) => z.id === id);
      if (amd) return `${amd.name} (${amd.id})`;
      if (name && /Advanced Micro Devices|\[AMD\]/.test(name) && /Root Complex/.test(name) && /(Family 1[7-9a-f]h|Starship|Matisse|Renoir|Cezanne|Raven|Raphael|Phoenix|Genoa|Rome|Milan|Vermeer)/.test(name)) return name;
    }
    return undefined;
  }
}

/** Whether the CPU routes P2P: the option, else recognised from an AMD Zen root complex (with a note). */
function cpuRoutesP2p(opt: boolean | 'auto' | undefined, zen: string | undefined, notes: string[]): boolean {
  if (opt === true) return true;
  if (opt === false || !zen) return false;
  notes.push(`recognised an AMD Zen root complex (${zen}): the CPU routes P2P through its host bridge (cpu_supports_p2pdma()); override with --no-cpu-routes-p2p`);
  return true;
}

/** Convert parsed lspci output to a TopologySpec. */
function lspciToTopology(roots: LspciRootBus[], verbose: Map<string, LspciVerboseFn> | null, opts: LspciImportOptions = {}): LspciImport {
  const notes: string[] = [];
  if (!verbose) notes.push(NO_VVV_NOTE);
  const rd = new LspciSpecReader(verbose, notes);
  const sorted = [...roots].sort((a, b) => a.domain - b.domain || a.bus - b.bus);
  const rootComplexes = sorted.map((r) => rd.rootComplexOf(r, opts.iommu ?? false));
  if (verbose && rd.missingAcs) notes.push(`${rd.missingAcs} bridge(s) missing from the -vvv output; their ACS was assumed as without -vvv`);
  const cpu = cpuRoutesP2p(opts.cpuRoutesP2p, rd.zenRootComplex(sorted), notes);
  const sockets = assignSockets(sorted, rootComplexes, (bdf) => verbose?.get(bdf)?.numaNode, notes);
  const spec = TopologySchema.parse({
    policy: opts.policy ?? 'iommu',
    cpuRoutesP2p: cpu,
    disableAcsRedir: opts.disableAcsRedir ?? [],
    rootComplexes,
  });
  return { spec, notes, sockets };
}

/**
 * The tree a plain `lspci` listing cannot show, rebuilt from the "Bus:
 * primary=, secondary=, subordinate=" lines of `lspci -vvv`: a function on
 * bus B hangs below the bridge whose secondary bus is B, or on root bus B
 * when no bridge has it. Refused when a bridge lacks its Bus: line (run as
 * root?) or two bridges claim one bus.
 */
function treeFromVerbose(verbose: Map<string, LspciVerboseFn>, file: string): LspciRootBus[] {
  const fns = [...verbose.values()].sort((a, b) => (a.bdf < b.bdf ? -1 : 1));
  const bridgeOf = new Map<string, LspciTreeFn>();
  const node = new Map<string, LspciTreeFn>();
  for (const x of fns) {
    const [dom, bus, df] = x.bdf.split(':');
    const [dev, fn] = df.split('.');
    const f: LspciTreeFn = { domain: parseInt(dom, 16), bus: parseInt(bus, 16), dev: parseInt(dev, 16), fn: parseInt(fn, 10), bdf: x.bdf, name: x.name, id: x.id, children: [], line: x.line };
    node.set(x.bdf, f);
    if (/bridge/i.test(x.classLabel) && x.secondary === undefined && !/^(Host|ISA) bridge/i.test(x.classLabel)) {
      throw new LspciParseError(file, x.line, `bridge ${x.bdf} has no "Bus: primary=…, secondary=…" line, so the tree cannot be rebuilt: capture \`sudo lspci -nnvvv\` (as root) or \`lspci -tvnn\``);
    }
    if (x.secondary !== undefined) {
      f.secondary = x.secondary;
      f.subordinate = x.subordinate;
      const key = `${dom}:${x.secondary.toString(16).padStart(2, '0')}`;
      const other = bridgeOf.get(key);
      if (other) throw new LspciParseError(file, x.line, `bridges ${other.bdf} and ${x.bdf} both claim bus ${key}: the tree cannot be rebuilt; capture \`lspci -tvnn\``);
      bridgeOf.set(key, f);
    }
  }
  const roots = new Map<string, LspciRootBus>();
  for (const f of node.values()) {
    const key = `${f.bdf.slice(0, 7)}`;
    const parent = bridgeOf.get(key);
    if (parent) parent.children.push(f);
    else {
      const r = roots.get(key) ?? { domain: f.domain, bus: f.bus, functions: [], line: f.line };
      roots.set(key, r);
      r.functions.push(f);
    }
  }
  return [...roots.values()];
}

/**
 * Both texts → import. `treeText` is `lspci -tv[nn]` output, or a plain
 * `lspci` / `lspci -vvv` listing when the -vvv output (given or the file
 * itself) has the Bus: lines to rebuild the tree from. The notes of both
 * parsers (skipped lines, rebuilt trees) come first in the import's notes.
 */
export function importLspci(treeText: string, verboseText: string | null, opts: LspciImportOptions = {}, files: { tree?: string; verbose?: string } = {}): LspciImport {
  const notes: string[] = [];
  const treeFile = files.tree ?? '<lspci -tv>';
  let verbose = verboseText === null ? null : parseLspciVerbose(verboseText, files.verbose, notes);
  let roots: LspciRootBus[];
  if (isPlainListing(treeText)) {
    const own = parseLspciVerbose(treeText, treeFile, notes);
    const withBus = (v: Map<string, LspciVerboseFn> | null) => v !== null && [...v.values()].some((x) => x.secondary !== undefined);
    const source = withBus(verbose) ? verbose! : withBus(own) ? own : null;
    if (!source) {
      throw new LspciParseError(treeFile, 1, 'this is a plain `lspci` listing, not a tree: capture `lspci -tvnn` for --lspci, or give `sudo lspci -nnvvv` output to --lspci-vvv as well (its "Bus:" lines give the nesting)');
    }
    roots = treeFromVerbose(source, source === verbose ? (files.verbose ?? '<lspci -vvv>') : treeFile);
    for (const f of own.keys()) if (!source.has(f)) notes.push(`${treeFile}: ${f} is in the listing but not in the -vvv output; left out`);
    notes.push(`${treeFile}: no tree (lspci -t) given: the tree was rebuilt from the "Bus:" lines of the -vvv output`);
    verbose ??= own;
  } else roots = parseLspciTree(treeText, treeFile, notes);
  const imp = lspciToTopology(roots, verbose, opts);
  return { spec: imp.spec, notes: [...notes, ...imp.notes], sockets: imp.sockets };
}
