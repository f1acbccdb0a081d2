/**
 * The picture formats of `peervma topo --format`: the fabric graph
 * (topo_graph.ts) as Graphviz DOT or as an SVG drawn by peervma.
 */
import type { Fabric } from '../hw/fabric.js';
import { renderTopoDot } from './topo_dot.js';
import { topoGraph } from './topo_graph.js';
import { renderTopoSvg } from './topo_svg.js';

export const TOPO_FORMATS = ['text', 'json', 'dot', 'svg'] as const;
export type TopoFormat = (typeof TOPO_FORMATS)[number];

export function renderTopoPicture(fabric: Fabric, names: readonly string[], format: 'dot' | 'svg', source: string): string {
  const g = topoGraph(fabric, names);
  return format === 'dot' ? renderTopoDot(g) : renderTopoSvg(g, `PCIe topology of ${source}`);
}
