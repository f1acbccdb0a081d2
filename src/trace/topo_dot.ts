/**
 * `peervma topo --format dot`: the fabric graph (topo_graph.ts) as
 * Graphviz DOT, for `dot -Tsvg` or any DOT viewer. The tree is the
 * hierarchy (root complexes on top); switch ports sit in a cluster per
 * switch; IOMMU groups are a `G<n>` tag on each function; P2P pairs are
 * undirected edges coloured by verdict that do not constrain the layout.
 */
import { VERDICT_STYLE, type TopoGraph, type TopoNode } from './topo_graph.js';

const q = (s: string) => `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;

const SHAPE: Record<TopoNode['kind'], string> = {
  'root-complex': 'box3d',
  'host-bridge': 'box',
  'root-port': 'box',
  'upstream-port': 'box',
  'downstream-port': 'box',
  endpoint: 'box',
  'rc-endpoint': 'box',
};

function label(n: TopoNode): string {
  const tag = n.group !== null ? ` [G${n.group}]` : '';
  return [n.title + tag, ...n.lines, ...(n.redirect ? ['ACS redirect: P2P goes up'] : [])].join('\\n');
}

function nodeLine(n: TopoNode): string {
  const style = n.kind === 'endpoint' ? 'rounded,filled' : 'filled';
  const fill = n.kind === 'root-complex' ? '#e3f2fd' : n.kind === 'endpoint' ? '#fffde7' : '#f5f5f5';
  return `  ${q(n.id)} [shape=${SHAPE[n.kind]}, style=${q(style)}, fillcolor=${q(fill)}, color=${q(n.redirect ? '#ef6c00' : '#555555')}, label="${label(n).replace(/"/g, '\\"')}"];`;
}

export function renderTopoDot(g: TopoGraph): string {
  const out = ['graph peervma_topology {', `  label=${q(`PCIe topology, policy ${g.policy}; P2P pairs coloured by verdict`)};`, '  labelloc=t; rankdir=TB; fontname="Helvetica";', '  node [fontname="Helvetica", fontsize=10];', '  edge [fontname="Helvetica", fontsize=9];'];
  const all: TopoNode[] = [];
  const walk = (n: TopoNode) => {
    all.push(n);
    n.children.forEach(walk);
  };
  g.roots.forEach(walk);
  const bySwitch = new Map<string, TopoNode[]>();
  for (const n of all) if (n.switchName) bySwitch.set(n.switchName, [...(bySwitch.get(n.switchName) ?? []), n]);
  const inCluster = new Set([...bySwitch.values()].flat());
  for (const n of all) if (!inCluster.has(n)) out.push(nodeLine(n));
  let i = 0;
  for (const [name, ports] of bySwitch) {
    out.push(`  subgraph cluster_${i++} {`, `    label=${q(`switch ${name}`)}; style=dashed; color="#888888";`);
    for (const p of ports) out.push(`  ${nodeLine(p)}`);
    out.push('  }');
  }
  for (const n of all) for (const c of n.children) out.push(`  ${q(n.id)} -- ${q(c.id)} [color="#333333"];`);
  const idOf = new Map(all.filter((n) => n.device).map((n) => [n.device!, n.id]));
  for (const p of g.pairs) {
    const s = VERDICT_STYLE[p.worst];
    const lbl = p.ab === p.ba ? p.ab : `${p.a}->${p.b} ${p.ab} / ${p.b}->${p.a} ${p.ba}`;
    out.push(`  ${q(idOf.get(p.a) ?? p.a)} -- ${q(idOf.get(p.b) ?? p.b)} [constraint=false, color=${q(s.colour)}, fontcolor=${q(s.colour)}, style=${s.dash ? 'dashed' : 'bold'}, label=${q(`${lbl}${p.worst !== 'not-supported' ? ` d=${p.distance}` : ''}`)}];`);
  }
  out.push('}');
  return out.join('\n');
}
