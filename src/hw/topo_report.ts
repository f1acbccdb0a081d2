/*
 * Rendering of a Fabric for people and scripts: the tree (lspci -tv
 * style), the ports and their ACS/link state, the IOMMU groups, the
 * provider × client matrix of map type and distance, and --explain.
 * Pure functions: Fabric in, string / JSON out. Text fits `cols` columns
 * (the CLI passes $COLUMNS, default 100): tables are borderless, a port's
 * note goes under its row, a matrix too wide is split by client columns,
 * and a table that would not fit even so turns into one block per row.
 *
 * Mirrors: pciutils ls-tree.c (show_tree_dev/show_tree_bus/
 * show_tree_bridge/print_it) for the tree; /sys/kernel/iommu_groups for
 * the group listing.
 */
import { width, wrap } from '../common/text_wrap.js';
import { formatAcs, acsRedirBits } from './acs.js';
import type { Fabric, MapTypeVerdict } from './fabric.js';
import { devLabel, PCI_DEV_TYPE_LABEL, rcLabel, type PciDev, type RootComplex } from './pci_tree.js';
import { formatLink } from './pcie_link.js';

const DEFAULT_COLS = 100;

/** `text` wrapped to `cols`, the first line indented by `first`, the others by `indent`. */
function hanging(text: string, cols: number, first: number, indent: number): string[] {
  return wrap(text, Math.max(20, cols - indent)).map((l, i) => ' '.repeat(i === 0 ? first : indent) + l);
}

/** Column widths of a left-aligned borderless table, and its total width. */
function tableWidths(head: readonly string[], rows: readonly (readonly string[])[]): { ws: number[]; total: number } {
  const ws = head.map((h, i) => Math.max(width(h), ...rows.map((r) => width(r[i]))));
  return { ws, total: ws.reduce((a, b) => a + b, 0) + 2 * (ws.length - 1) };
}

/** A left-aligned borderless table: header, rule, one line per row (`after[i]`: lines printed under row i). */
function leftTable(head: readonly string[], rows: readonly (readonly string[])[], after: readonly string[][] = []): string[] {
  const { ws } = tableWidths(head, rows);
  const line = (cells: readonly string[]) => cells.map((c, i) => c.padEnd(ws[i])).join('  ').trimEnd();
  return [line(head), ws.map((w) => '-'.repeat(w)).join('  '), ...rows.flatMap((r, i) => [line(r), ...(after[i] ?? [])])];
}

const hex2 = (n: number) => n.toString(16).padStart(2, '0');
const hex4 = (n: number) => n.toString(16).padStart(4, '0');

function leafText(d: PciDev): string {
  const parts: string[] = [];
  if (d.device) parts.push(d.device);
  if (d.name) parts.push(d.name);
  if (!d.device && !d.name) parts.push(PCI_DEV_TYPE_LABEL[d.type]);
  let s = parts.join(' — ');
  if (d.id) s += ` [${d.id}]`;
  return s;
}

/**
 * The tree for a terminal of `cols` columns: lspci -tv's drawing with long
 * device names wrapped under themselves, or, when the drawing alone is
 * wider (switches below switches), an outline.
 */
export function renderTreeFitted(fabric: Fabric, cols: number): { title: string; text: string } {
  const drawn = renderTree(fabric, cols);
  if (drawn.split('\n').every((l) => width(l) <= cols)) return { title: 'PCI tree (lspci -tv)', text: drawn };
  return { title: `PCI tree (outline: lspci -tv would be wider than ${cols} columns)`, text: renderTreeOutline(fabric, cols) };
}

/** One function per line, two spaces deeper per bus: bdf, type, the bus range below a bridge, the device. */
function renderTreeOutline(fabric: Fabric, cols: number): string {
  const out: string[] = [];
  const show = (d: PciDev, depth: number) => {
    const range = d.secondary === undefined ? '' : d.secondary === d.subordinate ? ` [${hex2(d.secondary)}]` : ` [${hex2(d.secondary)}-${hex2(d.subordinate!)}]`;
    const what = d.secondary === undefined ? leafText(d) : `${PCI_DEV_TYPE_LABEL[d.type]}${d.switchName ? ` (${d.switchName})` : ''}`;
    out.push(...hanging(`${d.bdf}${range}  ${what}`, cols, 2 * depth, 2 * depth + 4));
    for (const c of d.children) show(c, depth + 1);
  };
  for (const rc of fabric.tree.rcs) {
    out.push(rcLabel(rc));
    for (const d of rc.rootBus) show(d, 1);
  }
  return out.join('\n');
}

/** The tree in the format of `lspci -tv` (bridges print no name, as in lspci); with `cols`, a long device name wraps under itself. */
export function renderTree(fabric: Fabric, cols = Infinity): string {
  const out: string[] = [];
  const buf: string[] = [];
  const put = (p: number, s: string): number => {
    for (let i = 0; i < s.length; i++) buf[p + i] = s[i];
    return p + s.length;
  };
  const printIt = (end: number) => {
    out.push(buf.slice(0, end).join('').replace(/\s+$/, ''));
    for (let i = 0; i < end; i++) buf[i] = buf[i] === '+' || buf[i] === '|' ? '|' : ' ';
  };
  const showDev = (d: PciDev, p: number) => {
    p = put(p, `${hex2(d.devNum)}.${d.fn}`);
    if (d.secondary !== undefined) {
      p = put(p, d.secondary === d.subordinate ? `-[${hex2(d.secondary)}]-` : `-[${hex2(d.secondary)}-${hex2(d.subordinate!)}]-`);
      p = put(p, '-');
      showBus(d.children, p);
      return;
    }
    // A leaf's text wider than the rest of the line continues under itself (lspci does not wrap; we fit `cols`).
    const [first, ...more] = cols === Infinity ? [leafText(d)] : wrap(leafText(d), Math.max(20, cols - p - 2));
    printIt(put(p, `  ${first}`));
    for (const l of more) printIt(put(p, `  ${l}`));
  };
  const showBus = (devs: PciDev[], p: number) => {
    if (!devs.length) return printIt(p);
    if (devs.length === 1) return showDev(devs[0], put(p, '--'));
    devs.forEach((d, i) => showDev(d, put(p, i < devs.length - 1 ? '+-' : '\\-')));
  };
  const rcs = fabric.tree.rcs;
  let p = put(0, '-');
  if (rcs.length === 1) {
    p = put(p, `[${hex4(rcs[0].domain)}:${hex2(rcs[0].bus)}]-`);
    showBus(rcs[0].rootBus, p);
  } else {
    rcs.forEach((rc, i) => {
      const k = put(p, `${i < rcs.length - 1 ? '+-' : '\\-'}[${hex4(rc.domain)}:${hex2(rc.bus)}]-`);
      showBus(rc.rootBus, k);
    });
  }
  return out.join('\n');
}

function rcLine(rc: RootComplex, fabric: Fabric): string {
  return `${rcLabel(rc)}: IOMMU ${rc.iommu ? 'on' : 'off'}, P2P efficiency ${rc.p2pEfficiency}${fabric.tree.cpuRoutesP2p ? ', CPU routes P2P' : ''}${rc.socket <= 255 ? `, socket ${rc.socket}` : ''}`; // ≥ 256: no socket stated (one of its own)
}

const PORT_HEAD = ['function', 'type', 'link below', 'ACSCap', 'ACSCtl'];

/** Root complexes, bridges and their link / ACS state; a port's note (ACS redirect, changes made) under its row. */
export function renderPorts(fabric: Fabric, cols = DEFAULT_COLS): string {
  const rows: string[][] = [];
  const notes: string[] = [];
  for (const d of fabric.tree.devs) {
    if (d.secondary === undefined) continue;
    const redir = acsRedirBits(d.acs);
    rows.push([
      d.bdf,
      `${PCI_DEV_TYPE_LABEL[d.type]}${d.switchName ? ` (${d.switchName})` : ''}`,
      d.link ? formatLink(d.link.gen, d.link.width) : '-',
      d.acs.cap === null ? 'none' : formatAcs(d.acs.cap),
      d.acs.cap === null ? '' : formatAcs(d.acs.ctl),
    ]);
    notes.push([redir ? `redirect ${formatAcs(redir)}` : '', ...d.acs.changes].filter(Boolean).join('; '));
  }
  const noteLines = (n: string) => (n ? hanging(`note: ${n}`, cols, 2, 8) : []);
  const out = fabric.tree.rcs.flatMap((rc) => hanging(rcLine(rc, fabric), cols, 0, 2));
  if (tableWidths(PORT_HEAD, rows).total <= cols) return [...out, ...leftTable(PORT_HEAD, rows, notes.map(noteLines))].join('\n');
  // Narrow terminal: one block per port.
  for (const [i, r] of rows.entries()) {
    out.push(...hanging(`${r[0]}  ${r[1]}`, cols, 0, 2));
    out.push(...hanging(`link below ${r[2]}; ACSCap ${r[3]}${r[4] ? `; ACSCtl ${r[4]}` : ''}`, cols, 2, 4), ...noteLines(notes[i]));
  }
  return out.join('\n');
}

export function renderGroups(fabric: Fabric, cols = DEFAULT_COLS): string {
  const lines: string[] = [];
  for (const g of fabric.iommuGroups()) {
    const state = g.iommu ? '' : ' (IOMMU off: would-be group)';
    lines.push(...hanging(`IOMMU group ${g.id}${state}: ${g.members.map((m) => (m.device ? `${m.bdf} ${m.device}` : m.bdf)).join(', ')}`, cols, 0, 4));
    for (const w of g.why) lines.push(...hanging(w, cols, 4, 6));
  }
  return lines.join('\n');
}

function cell(v: MapTypeVerdict): string {
  if (v.map === 'bus-addr') return `bus-addr ${v.distance}`;
  if (v.map === 'thru-host-bridge') return `host-bridge ${v.distance}`;
  return `no (${v.kernel ? (v.kernel.map === 'not-supported' ? 'kernel' : 'policy') : '?'})`;
}

/**
 * Provider × client matrix (rows: provider, columns: client). Too wide for
 * `cols`: split into several tables, each with the provider column and as
 * many client columns as fit.
 */
export function renderMatrix(fabric: Fabric, names: string[], cols = DEFAULT_COLS): string {
  const short = (n: string) => (/^[0-9a-f]{4}:/.test(n) ? n.slice(5) : n);
  const corner = 'provider \\ client';
  const cells = names.map((p) => names.map((c) => cell(fabric.mapType(p, c))));
  const out = hanging(`P2P matrix, policy ${fabric.policy} (cell: map type and distance; "no (kernel)": the kernel refuses; "no (policy)": the kernel would allow, the policy mode refuses)`, cols, 0, 2);
  const first = Math.max(width(corner), ...names.map((n) => width(short(n))));
  const colW = (j: number) => Math.max(width(short(names[j])), ...cells.map((r) => width(r[j])));
  const chunks: number[][] = [[]];
  let used = first;
  names.forEach((_, j) => {
    const cur = chunks[chunks.length - 1];
    if (cur.length > 0 && used + 2 + colW(j) > cols) {
      chunks.push([]);
      used = first;
    }
    chunks[chunks.length - 1].push(j);
    used += 2 + colW(j);
  });
  for (const js of chunks) {
    if (chunks.length > 1) out.push('', js.length === 1 ? `client ${js[0] + 1} of ${names.length}:` : `clients ${js[0] + 1}-${js[js.length - 1] + 1} of ${names.length}:`);
    out.push(...leftTable([corner, ...js.map((j) => short(names[j]))], names.map((p, i) => [short(p), ...js.map((j) => cells[i][j])])));
  }
  return out.join('\n');
}

/** --explain A B: the path walked and the reason for the verdict, both directions. */
export function renderExplain(fabric: Fabric, a: string, b: string): string {
  const A = fabric.resolve(a);
  const B = fabric.resolve(b);
  const lines: string[] = [];
  if (!A || !B) return fabric.mapType(a, b).reason;
  const v = fabric.mapType(a, b);
  lines.push(`provider: ${devLabel(A)} ${PCI_DEV_TYPE_LABEL[A.type]} on ${rcLabel(A.rc)}${A.rc.iommu ? ' (IOMMU on)' : ''}`);
  lines.push(`client:   ${devLabel(B)} ${PCI_DEV_TYPE_LABEL[B.type]} on ${rcLabel(B.rc)}${B.rc.iommu ? ' (IOMMU on)' : ''}`);
  lines.push('path walked (pci_upstream_bridge() from the provider up, then down to the client):');
  for (const s of v.path) lines.push(`  ${s}`);
  lines.push(`2019 upstream_bridge_distance(): ${v.distance2019}${v.distance2019 === -1 ? ' (no common upstream bridge)' : v.distance2019 === -2 ? ' (ACS redirect on the path)' : ''}`);
  lines.push(`current calc_map_type_and_dist(): ${v.kernel?.map}, distance ${v.kernel?.distance}`);
  lines.push(`policy ${v.policy}: ${v.map}${v.map !== 'not-supported' ? `, distance ${v.distance}` : ''}`);
  lines.push(`reason: ${v.reason}`);
  if (v.fixes.length) {
    lines.push('fixes:');
    for (const f of v.fixes) lines.push(`  - ${f}`);
  }
  try {
    lines.push(`IOMMU groups: ${fabric.nameOf(A)} → ${fabric.iommuGroupOf(a)}, ${fabric.nameOf(B)} → ${fabric.iommuGroupOf(b)}`);
  } catch {
    /* host bridge functions have no group */
  }
  try {
    const r = fabric.route(b, a, 'auto');
    lines.push(`bandwidth model route ${fabric.nameOf(B)} → ${fabric.nameOf(A)} (${r.via}): ${r.crossing.join(' → ') || '(no link)'}`);
  } catch {
    /* no route */
  }
  return lines.join('\n');
}

/** Everything, for --json. */
export function topoJson(fabric: Fabric, names: string[], extra: Record<string, unknown> = {}): unknown {
  const groupOf = new Map<PciDev, number>();
  for (const g of fabric.iommuGroups()) for (const m of g.members) groupOf.set(m, g.id);
  return {
    policy: fabric.policy,
    cpuRoutesP2p: fabric.tree.cpuRoutesP2p,
    rootComplexes: fabric.tree.rcs.map((rc) => ({
      name: rc.name,
      domain: rc.domain,
      bus: rc.bus,
      hostBridgeId: rc.hostBridgeId ?? null,
      iommu: rc.iommu,
      p2pEfficiency: rc.p2pEfficiency,
    })),
    functions: fabric.tree.devs.map((d) => ({
      bdf: d.bdf,
      type: d.type,
      device: d.device ?? null,
      name: d.name ?? null,
      id: d.id ?? null,
      parent: d.parent?.bdf ?? null,
      rc: d.rc.name,
      link: d.link ?? null,
      acsCap: d.acs.cap === null ? null : formatAcs(d.acs.cap).split(' ').filter((x) => x !== '-'),
      acsCtl: d.acs.cap === null ? null : formatAcs(d.acs.ctl).split(' ').filter((x) => x !== '-'),
      iommuGroup: groupOf.get(d) ?? null,
    })),
    iommuGroups: fabric.iommuGroups().map((g) => ({ id: g.id, rc: g.rcName, iommu: g.iommu, members: g.members.map((m) => m.bdf), why: g.why })),
    matrix: names.flatMap((p) =>
      names.map((c) => {
        const v = fabric.mapType(p, c);
        return { provider: p, client: c, map: v.map, distance: v.distance, kernelMap: v.kernel?.map ?? null, distance2019: v.distance2019, reason: v.reason };
      }),
    ),
    warnings: fabric.tree.warnings,
    ...extra,
  };
}
