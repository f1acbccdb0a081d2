/**
 * `peervma topo --format svg` and the topology picture of the HTML report:
 * the fabric graph (topo_graph.ts) drawn by our own code, no Graphviz and
 * no network. A layered tree (root complexes on top, one layer per bus
 * level; a parent centred over its children), a dashed box per switch, an
 * IOMMU group badge per function, an orange outline on ports with ACS
 * redirect, P2P pairs as arcs under the endpoints coloured by verdict,
 * and beside them the provider x client matrix and a legend.
 */
import { wrap } from './text_layout.js';
import { VERDICT_STYLE, type TopoGraph, type TopoNode, type Verdict } from './topo_graph.js';

const W = 172; // node width
const LINE = 13;
const HGAP = 18;
const VGAP = 46;
const PAD = 20;
const CELL = 62; // matrix cell width
/** Characters per legend line (about 420 px at 11 px Helvetica). */
const LEGEND_CHARS = 72;
const GROUP_COLOURS = ['#1565c0', '#6a1b9a', '#00838f', '#ad1457', '#4e342e', '#558b2f', '#283593', '#f9a825'];

export const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

interface Placed {
  readonly n: TopoNode;
  readonly x: number;
  readonly y: number;
}

const FILL: Record<TopoNode['kind'], string> = {
  'root-complex': '#e3f2fd',
  'host-bridge': '#e3f2fd',
  'root-port': '#f5f5f5',
  'upstream-port': '#eeeeee',
  'downstream-port': '#f5f5f5',
  endpoint: '#fffde7',
  'rc-endpoint': '#fffde7',
};

/** Node height: a title and the node's lines, the same for every node so layers line up. */
function nodeHeight(g: TopoGraph): number {
  let most = 0;
  const walk = (n: TopoNode) => {
    most = Math.max(most, n.lines.length + (n.redirect ? 1 : 0));
    n.children.forEach(walk);
  };
  g.roots.forEach(walk);
  return 12 + LINE * (most + 1);
}

/**
 * Tidy layered layout: leaves left to right, parents centred over their
 * children, and every endpoint on the bottom layer so the P2P arcs under
 * them cross no part of the tree.
 */
function layout(g: TopoGraph, h: number): Placed[] {
  const out: Placed[] = [];
  let nextLeaf = 0;
  const depthOf = (n: TopoNode): number => 1 + Math.max(-1, ...n.children.map(depthOf));
  const bottom = Math.max(...g.roots.map(depthOf));
  const place = (n: TopoNode, depth: number): number => {
    let x: number;
    if (n.children.length === 0) x = PAD + nextLeaf++ * (W + HGAP);
    else {
      const xs = n.children.map((c) => place(c, depth + 1));
      x = (xs[0] + xs[xs.length - 1]) / 2;
    }
    const layer = n.kind === 'endpoint' || n.kind === 'rc-endpoint' ? bottom : depth;
    out.push({ n, x, y: PAD + 24 + layer * (h + VGAP) });
    return x;
  };
  g.roots.forEach((r) => {
    place(r, 0);
    nextLeaf += 0.3; // a little air between root complexes
  });
  return out;
}

function nodeSvg(p: Placed, h: number): string {
  const { n, x, y } = p;
  const stroke = n.redirect ? '#ef6c00' : '#555';
  const sw = n.redirect ? 2.5 : 1;
  const rx = n.kind === 'endpoint' ? 9 : 2;
  const parts = [`<g class="node" data-id="${esc(n.id)}">`, `<rect x="${x}" y="${y}" width="${W}" height="${h}" rx="${rx}" fill="${FILL[n.kind]}" stroke="${stroke}" stroke-width="${sw}"/>`];
  parts.push(`<text x="${x + 8}" y="${y + 16}" font-weight="bold">${esc(n.title)}</text>`);
  const lines = [...n.lines, ...(n.redirect ? ['ACS redirect: P2P goes up'] : [])];
  lines.forEach((l, i) => parts.push(`<text x="${x + 8}" y="${y + 16 + LINE * (i + 1)}"${l.startsWith('ACS redirect') ? ' fill="#ef6c00"' : ''}>${esc(l)}</text>`));
  if (n.group !== null) {
    const c = GROUP_COLOURS[n.group % GROUP_COLOURS.length];
    parts.push(`<rect x="${x + W - 34}" y="${y + 5}" width="28" height="15" rx="7" fill="${c}"/><text x="${x + W - 20}" y="${y + 16}" fill="#fff" text-anchor="middle" font-size="10">G${n.group}</text>`);
  }
  parts.push('</g>');
  return parts.join('');
}

function cellText(map: Verdict, distance: number, self: boolean): string {
  if (self) return '-';
  if (map === 'bus-addr') return `bus ${distance}`;
  if (map === 'thru-host-bridge') return `host ${distance}`;
  return 'no';
}

/** The provider x client matrix at (x0, y0); returns its svg and size. */
function matrixSvg(g: TopoGraph, x0: number, y0: number): { svg: string; w: number; h: number } {
  const names = g.devices;
  const head = Math.max(70, ...names.map((n) => n.length * 7 + 10));
  const parts = [`<text x="${x0}" y="${y0}" font-weight="bold">P2P matrix (row: provider, column: client), policy ${esc(g.policy)}</text>`];
  const top = y0 + 10;
  names.forEach((c, j) => parts.push(`<text x="${x0 + head + j * CELL + CELL / 2}" y="${top + 14}" text-anchor="middle">${esc(c)}</text>`));
  names.forEach((p, i) => {
    const y = top + 20 + i * 22;
    parts.push(`<text x="${x0}" y="${y + 15}">${esc(p)}</text>`);
    names.forEach((c, j) => {
      const m = g.matrix.find((e) => e.provider === p && e.client === c)!;
      const self = p === c;
      const fill = self ? '#eeeeee' : VERDICT_STYLE[m.map].colour;
      parts.push(`<rect class="cell" x="${x0 + head + j * CELL + 1}" y="${y}" width="${CELL - 2}" height="20" fill="${fill}" fill-opacity="${self ? 1 : 0.85}"/>`);
      parts.push(`<text x="${x0 + head + j * CELL + CELL / 2}" y="${y + 14}" text-anchor="middle" fill="${self ? '#555' : '#fff'}">${cellText(m.map, m.distance, self)}</text>`);
    });
  });
  return { svg: parts.join(''), w: head + names.length * CELL, h: 30 + names.length * 22 };
}

function legendSvg(g: TopoGraph, x0: number, y0: number): { svg: string; h: number } {
  const parts: string[] = [];
  let y = y0;
  for (const v of Object.keys(VERDICT_STYLE) as Verdict[]) {
    const s = VERDICT_STYLE[v];
    parts.push(`<line x1="${x0}" y1="${y}" x2="${x0 + 30}" y2="${y}" stroke="${s.colour}" stroke-width="3"${s.dash ? ' stroke-dasharray="6 4"' : ''}/><text x="${x0 + 38}" y="${y + 4}">${esc(s.label)}</text>`);
    y += 18;
  }
  parts.push(`<rect x="${x0}" y="${y - 8}" width="30" height="14" fill="#f5f5f5" stroke="#ef6c00" stroke-width="2.5"/><text x="${x0 + 38}" y="${y + 4}">port with ACS redirect (peer TLPs forced to the root complex)</text>`);
  y += 18;
  const groups = g.groups.map((gr) => `G${gr.id}${gr.iommu ? '' : ' (IOMMU off: would-be)'}: ${gr.members.join(', ')}`);
  parts.push(`<text x="${x0}" y="${y + 4}" font-weight="bold">IOMMU groups</text>`);
  y += 16;
  for (const [i, t] of groups.entries()) {
    const c = GROUP_COLOURS[g.groups[i].id % GROUP_COLOURS.length];
    parts.push(`<rect x="${x0}" y="${y - 7}" width="22" height="13" rx="6" fill="${c}"/>`);
    for (const l of wrap(t, LEGEND_CHARS)) {
      parts.push(`<text x="${x0 + 30}" y="${y + 4}">${esc(l)}</text>`);
      y += 14;
    }
    y += 2;
  }
  return { svg: parts.join(''), h: y - y0 };
}

/** The whole picture as a standalone SVG document (also inlined by the HTML report). */
export function renderTopoSvg(g: TopoGraph, title = 'PCIe topology'): string {
  const h = nodeHeight(g);
  const placed = layout(g, h);
  const byId = new Map(placed.map((p) => [p.n.id, p]));
  const treeW = Math.max(...placed.map((p) => p.x + W)) + PAD;
  const treeBottom = Math.max(...placed.map((p) => p.y + h));
  const parts: string[] = [];
  // Switch boxes under everything else.
  const bySwitch = new Map<string, Placed[]>();
  for (const p of placed) if (p.n.switchName) bySwitch.set(p.n.switchName, [...(bySwitch.get(p.n.switchName) ?? []), p]);
  for (const [name, ps] of bySwitch) {
    const x0 = Math.min(...ps.map((p) => p.x)) - 8;
    const y0 = Math.min(...ps.map((p) => p.y)) - 18;
    const x1 = Math.max(...ps.map((p) => p.x + W)) + 8;
    const y1 = Math.max(...ps.map((p) => p.y + h)) + 8;
    parts.push(`<g class="switch"><rect x="${x0}" y="${y0}" width="${x1 - x0}" height="${y1 - y0}" rx="8" fill="none" stroke="#888" stroke-dasharray="5 4"/><text x="${x0 + 6}" y="${y0 + 13}" fill="#666">switch ${esc(name)}</text></g>`);
  }
  // Tree edges.
  for (const p of placed) {
    for (const c of p.n.children) {
      const q = byId.get(c.id)!;
      const ym = p.y + h + VGAP / 2;
      parts.push(`<path class="link" d="M${p.x + W / 2} ${p.y + h} V${ym} H${q.x + W / 2} V${q.y}" fill="none" stroke="#333"/>`);
    }
  }
  // P2P arcs under the endpoints.
  const endpoint = new Map(placed.filter((p) => p.n.device).map((p) => [p.n.device!, p]));
  let arcBottom = treeBottom;
  const arcs: string[] = [];
  for (const pair of g.pairs) {
    const a = endpoint.get(pair.a);
    const b = endpoint.get(pair.b);
    if (!a || !b) continue;
    const s = VERDICT_STYLE[pair.worst];
    const xa = a.x + W / 2 - 20 + (g.devices.indexOf(pair.b) % 5) * 10;
    const xb = b.x + W / 2 - 20 + (g.devices.indexOf(pair.a) % 5) * 10;
    const dip = 24 + Math.abs(xb - xa) * 0.22;
    const ya = a.y + h;
    const yb = b.y + h;
    arcBottom = Math.max(arcBottom, Math.max(ya, yb) + dip * 0.75);
    const tip = `${pair.a} / ${pair.b}: ${pair.ab === pair.ba ? pair.ab : `${pair.a}->${pair.b} ${pair.ab}, ${pair.b}->${pair.a} ${pair.ba}`}${pair.worst !== 'not-supported' ? `, distance ${pair.distance}` : ''}`;
    arcs.push(`<path class="p2p ${pair.worst}" d="M${xa} ${ya} C${xa} ${ya + dip}, ${xb} ${yb + dip}, ${xb} ${yb}" fill="none" stroke="${s.colour}" stroke-width="2.5"${s.dash ? ' stroke-dasharray="6 4"' : ''} opacity="0.85"><title>${esc(tip)}</title></path>`);
  }
  parts.push(...arcs);
  for (const p of placed) parts.push(nodeSvg(p, h));
  // Matrix and legend under the tree.
  const y0 = arcBottom + 36;
  const m = matrixSvg(g, PAD, y0);
  const lx = PAD + Math.max(m.w, 340) + 40; // 340: the matrix title's width
  const leg = legendSvg(g, lx, y0);
  const width = Math.max(treeW, lx + 460);
  const height = y0 + Math.max(m.h, leg.h) + PAD;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" class="topo" width="${Math.ceil(width)}" height="${Math.ceil(height)}" viewBox="0 0 ${Math.ceil(width)} ${Math.ceil(height)}" font-family="Helvetica, Arial, sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="#ffffff"/>`,
    `<text x="${PAD}" y="${PAD + 4}" font-size="14" font-weight="bold">${esc(title)}</text>`,
    ...parts,
    m.svg,
    leg.svg,
    '</svg>',
  ].join('\n');
}
