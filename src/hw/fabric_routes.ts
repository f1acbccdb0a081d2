/*
 * Fabric routes: which links a transfer crosses and how fast the transfers
 * of a workload go (bandwidth model over every link direction, each root
 * complex's fabric and RAM, the socket interconnect).
 *
 * Mirrors (Linux): the data path decided by pci_p2pdma_map_type() —
 * PCI_P2PDMA_MAP_BUS_ADDR (up to the common upstream bridge and down),
 * PCI_P2PDMA_MAP_THRU_HOST_BRIDGE (through the root complex), and the bounce
 * through system RAM when P2P is refused; the link of a port as
 * pcie_bandwidth_available() reads it (generation × width).
 *
 * Lifetime: one per Fabric, built with it; stateless over the immutable tree.
 * The P2P verdicts come from the Fabric's FabricVerdicts (shared cache).
 */
import { simulateFlows, type BwFlow, type BwHop, type BwResource, type BwResult } from './bandwidth.js';
import { calcMapTypeAndDist, type P2pMapType } from './p2pdma.js';
import type { PciDev, PciTree, RootComplex } from './pci_tree.js';
import { formatLink, linkBytesPerSec } from './pcie_link.js';
import { FabricError, mustDev, nameOf } from './fabric_names.js';
import type { FabricVerdicts } from './fabric_verdicts.js';

/** Route of a transfer through the bandwidth model. */
export interface FabricRoute {
  via: 'p2p' | 'bounce' | 'dma';
  map?: P2pMapType;
  hops: BwHop[];
  /** Per-flow rate ceiling (root complex P2P efficiency), bytes/s. */
  cap?: number;
  /** Resource ids in crossing order, for display. */
  crossing: string[];
}

export interface FabricFlow {
  id?: string;
  /** Device name, PCI address, or 'ram' / 'ram:<rc name>'. */
  src: string;
  dst: string;
  bytes: number;
  start?: number;
  /** auto: P2P if mapType allows it, else bounce through system RAM. */
  via?: 'auto' | 'p2p' | 'bounce';
}

export class FabricRoutes {
  readonly tree: PciTree;
  private readonly verdicts: Pick<FabricVerdicts, 'mapType'>;

  constructor(tree: PciTree, verdicts: Pick<FabricVerdicts, 'mapType'>) {
    this.tree = tree;
    this.verdicts = verdicts;
  }

  /** Every resource of the model: both directions of every link, each RC's fabric and RAM, interconnects. */
  bandwidthResources(): BwResource[] {
    const out: BwResource[] = [];
    for (const d of this.tree.devs) {
      if (!d.link) continue;
      const cap = linkBytesPerSec(d.link.gen, d.link.width);
      const l = formatLink(d.link.gen, d.link.width);
      out.push({ id: `link:${d.bdf}:up`, capacity: cap, label: `link below ${d.bdf} ↑ ${l}` });
      out.push({ id: `link:${d.bdf}:down`, capacity: cap, label: `link below ${d.bdf} ↓ ${l}` });
    }
    for (const rc of this.tree.rcs) {
      out.push({ id: `rc:${rc.name}`, capacity: rc.fabricGBps * 1e9, label: `root complex ${rc.name} fabric` });
      out.push({ id: `mem:${rc.name}`, capacity: rc.memGBps * 1e9, label: `system RAM of ${rc.name}` });
    }
    for (const a of this.tree.rcs) {
      for (const b of this.tree.rcs) {
        if (a.socket !== b.socket) out.push({ id: `xlink:${a.name}->${b.name}`, capacity: this.tree.interconnectGBps * 1e9, label: `interconnect ${a.name} → ${b.name}` });
      }
    }
    return out;
  }

  private linkAbove(x: PciDev): string | null {
    const p = x.parent;
    return p && p.link ? `link:${p.bdf}` : null;
  }

  private upLinks(from: PciDev, stop: PciDev | null): BwHop[] {
    const hops: BwHop[] = [];
    for (let x: PciDev | null = from; x && x !== stop; x = x.parent) {
      const l = this.linkAbove(x);
      if (l) hops.push({ res: `${l}:up`, weight: 1 });
    }
    return hops;
  }

  private downLinks(to: PciDev, stop: PciDev | null): BwHop[] {
    return this.upLinks(to, stop).map((h) => ({ res: h.res.replace(/:up$/, ':down'), weight: 1 })).reverse();
  }

  private ramRc(spec: string, near: PciDev | null): RootComplex {
    const name = spec.split(':')[1];
    if (name) {
      const rc = this.tree.rcs.find((r) => r.name === name);
      if (!rc) throw new FabricError(`bandwidth: no root complex '${name}' for ${spec} (root complexes: ${this.tree.rcs.map((r) => r.name).join(', ')})`);
      return rc;
    }
    return near ? near.rc : this.tree.rcs[0];
  }

  private cross(a: RootComplex, b: RootComplex): BwHop[] {
    if (a === b) return [];
    if (a.socket === b.socket) return [{ res: `rc:${b.name}`, weight: 1 }];
    return [{ res: `xlink:${a.name}->${b.name}`, weight: 1 }, { res: `rc:${b.name}`, weight: 1 }];
  }

  /**
   * Resources a transfer src → dst crosses. src/dst: a device, or 'ram' /
   * 'ram:<rc>' (system RAM; default: the RC of the other end).
   *   p2p bus-addr: up to the common upstream bridge and down again.
   *   p2p thru-host-bridge: up to the root complex (and across the socket
   *     interconnect if needed) and down; capped at p2pEfficiency × the
   *     slowest link on the path.
   *   bounce: into system RAM of src's RC and back out (RAM weight 2, that
   *     RC's fabric weight 2).
   */
  route(src: string, dst: string, via: 'auto' | 'p2p' | 'bounce' = 'auto'): FabricRoute {
    const isRam = (s: string) => s === 'ram' || s.startsWith('ram:');
    if (isRam(src) && isRam(dst)) throw new FabricError('bandwidth: RAM to RAM copies do not cross the PCIe fabric');
    if (isRam(src) || isRam(dst)) {
      const dev = mustDev(this.tree, isRam(src) ? dst : src);
      const rc = this.ramRc(isRam(src) ? src : dst, dev);
      const hops = isRam(src)
        ? [{ res: `mem:${rc.name}`, weight: 1 }, { res: `rc:${rc.name}`, weight: 1 }, ...this.cross(rc, dev.rc), ...this.downLinks(dev, null)]
        : [...this.upLinks(dev, null), { res: `rc:${dev.rc.name}`, weight: 1 }, ...this.cross(dev.rc, rc), { res: `mem:${rc.name}`, weight: 1 }];
      return { via: 'dma', hops, crossing: hops.map((h) => h.res) };
    }
    const S = mustDev(this.tree, src);
    const D = mustDev(this.tree, dst);
    // The destination's memory is read/written by the source: provider = dst, client = src.
    const v = this.verdicts.mapType(nameOf(D), nameOf(S));
    let mode: 'p2p' | 'bounce' = via === 'auto' ? (v.map === 'not-supported' ? 'bounce' : 'p2p') : via;
    if (mode === 'p2p' && v.map === 'not-supported') {
      throw new FabricError(`bandwidth: no P2P route from ${src} to ${dst}: ${v.reason}`);
    }
    if (mode === 'p2p') {
      const k = calcMapTypeAndDist(this.tree, D, S);
      if (v.map === 'bus-addr') {
        const common = k.walk.common!;
        const hops = [...this.upLinks(S, common), ...this.downLinks(D, common)];
        return { via: 'p2p', map: 'bus-addr', hops, crossing: hops.map((h) => h.res) };
      }
      const hops = [...this.upLinks(S, null), { res: `rc:${S.rc.name}`, weight: 1 }, ...this.cross(S.rc, D.rc), ...this.downLinks(D, null)];
      const res = new Map(this.bandwidthResources().map((r) => [r.id, r]));
      const slowest = Math.min(...hops.filter((h) => h.res.startsWith('link:')).map((h) => res.get(h.res)!.capacity));
      const eff = Math.min(S.rc.p2pEfficiency, D.rc.p2pEfficiency);
      const cap = Number.isFinite(slowest) ? eff * slowest : undefined;
      return { via: 'p2p', map: 'thru-host-bridge', hops, cap, crossing: hops.map((h) => h.res) };
    }
    const rc = S.rc;
    const hops: BwHop[] = [
      ...this.upLinks(S, null),
      { res: `rc:${rc.name}`, weight: rc === D.rc ? 2 : 1 },
      { res: `mem:${rc.name}`, weight: 2 },
      ...(rc === D.rc ? [] : [{ res: `rc:${rc.name}`, weight: 1 }, ...this.cross(rc, D.rc)]),
      ...this.downLinks(D, null),
    ];
    const merged = mergeHops(hops);
    return { via: 'bounce', map: v.map, hops: merged, crossing: hops.map((h) => h.res) };
  }

  /** Run the bandwidth model on transfers between devices/RAM. */
  modelFlows(flows: FabricFlow[]): BwResult & { routes: Record<string, FabricRoute> } {
    const routes: Record<string, FabricRoute> = {};
    const bw: BwFlow[] = flows.map((f, i) => {
      const id = f.id ?? `flow${i}`;
      const r = this.route(f.src, f.dst, f.via ?? 'auto');
      routes[id] = r;
      return { id, bytes: f.bytes, start: f.start ?? 0, hops: r.hops, cap: r.cap };
    });
    return { ...simulateFlows(this.bandwidthResources(), bw), routes };
  }
}

function mergeHops(hops: BwHop[]): BwHop[] {
  const m = new Map<string, number>();
  for (const h of hops) m.set(h.res, (m.get(h.res) ?? 0) + h.weight);
  return [...m].map(([res, weight]) => ({ res, weight }));
}
