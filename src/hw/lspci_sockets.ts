/*
 * Sockets of an lspci capture: which root buses belong to one CPU package.
 * Linux gives a PCI device the NUMA node of its host bridge (ACPI _PXM,
 * pcibus_to_node() / dev_to_node()) and `lspci -vvv` prints it as
 * "NUMA node: N"; root buses on one node are one socket here. A capture
 * without that line (no -vvv, or firmware that gives no node) cannot tell
 * sockets apart: those root buses go on the first root bus's socket, and the
 * verdicts state it as an assumption (--socket BUS=N states it).
 * Invariant: every root complex of the spec gets a socket; the spec's
 * rootComplexes are in the order of `roots`.
 */
import type { LspciRootBus, LspciTreeFn } from './lspci_types.js';

export interface SocketSource {
  /** Root complex names whose socket the capture did not show. */
  assumed: string[];
  /** Root complex name → the NUMA node its socket was taken from. */
  numa: Map<string, number>;
}

/** NUMA nodes of the functions below a root bus, in lspci order, with the first function showing each. */
function nodesBelow(fns: readonly LspciTreeFn[], nodeOf: (bdf: string) => number | undefined, out: Map<number, string>): void {
  for (const f of fns) {
    const n = nodeOf(f.bdf);
    if (n !== undefined && !out.has(n)) out.set(n, f.bdf);
    nodesBelow(f.children, nodeOf, out);
  }
}

export function assignSockets(
  roots: readonly LspciRootBus[],
  rcs: { name: string; socket?: number }[],
  nodeOf: (bdf: string) => number | undefined,
  notes: string[],
): SocketSource {
  const src: SocketSource = { assumed: [], numa: new Map() };
  roots.forEach((r, i) => {
    const nodes = new Map<number, string>();
    nodesBelow(r.functions, nodeOf, nodes);
    const [first] = nodes;
    if (!first) return;
    rcs[i].socket = first[0];
    src.numa.set(rcs[i].name, first[0]);
    if (nodes.size > 1) {
      notes.push(`${rcs[i].name}: functions on NUMA nodes ${[...nodes].map(([n, bdf]) => `${n} (${bdf})`).join(', ')}; socket taken from node ${first[0]} (state it with --socket)`);
    }
  });
  const fallback = rcs.find((r) => r.socket !== undefined)?.socket ?? 0;
  for (const rc of rcs) {
    if (rc.socket !== undefined) continue;
    rc.socket = fallback;
    src.assumed.push(rc.name);
  }
  return src;
}
