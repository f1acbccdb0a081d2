/*
 * Fabric: the PCIe tree of one scenario plus the questions the rest of
 * peervma asks it — may these two devices do P2P and how (policy mode on
 * top of the kernel's answer), which IOMMU group, is the IOMMU on, which
 * links does a transfer cross (bandwidth model).
 *
 * Mirrors (Linux): pci_p2pdma_map_type() + its per-pair cache
 * (provider->p2pdma->map_types, key map_types_idx(client)),
 * pci_p2pdma_distance_many(), pci_p2pmem_find_many(), the RFC's
 * pci_test_p2p() / device_test_p2p(), iommu_group_get()->id.
 *
 * Lifetime: built once per scenario by buildFabric() (topology.ts); the tree
 * is immutable afterwards, so cached verdicts never go stale.
 *   mapCache — written by mapType() only; key `${provider}\0${client}`.
 *
 * Policy modes (topology.policy):
 *   rfc-v1  direct P2P only: both root complexes' IOMMU off, no ACS redirect
 *           on the path, a common upstream bridge (same sub-tree). Anything
 *           else → 'not-supported' with the reason and the fix.
 *   iommu   the RFC's stated intent: the current kernel's answer, so routing
 *           through the root complex ('thru-host-bridge', translated by the
 *           IOMMU when it is on) is allowed where the platform allows it.
 */
import { fixHints } from './fix_hints.js';
import { simulateFlows, type BwFlow, type BwHop, type BwResource, type BwResult } from './bandwidth.js';
import { computeIommuGroups, type IommuGroup } from './iommu_groups.js';
import {
  calcMapTypeAndDist,
  p2pmemFindMany,
  upstreamBridgeDistance,
  type MapTypeResult,
  type P2pMapType,
} from './p2pdma.js';
import { formatAcs, acsRedirBits } from './acs.js';
import { devLabel, normalizeBdf, PCI_DEV_TYPE_LABEL, type PciDev, type PciTree, type RootComplex } from './pci_tree.js';
import { formatLink, linkBytesPerSec } from './pcie_link.js';
import type { PolicyMode } from './topology_schema.js';

/** The answer of Fabric.mapType(). */
export interface MapTypeVerdict {
  map: P2pMapType;
  /** Distance of the current kernel (calc_map_type_and_dist), -1 if unknown device. */
  distance: number;
  /** One paragraph: "p2pdma: …" naming both ends, the port(s)/bit(s)/host bridge, and the fix. */
  reason: string;
  /** Functions walked: provider … common bridge / host bridge … client. */
  path: string[];
  policy: PolicyMode;
  /** The kernel's own verdict before the policy mode (null: unknown device). */
  kernel: { map: P2pMapType; distance: number } | null;
  /** upstream_bridge_distance() of 2019 (-1 none, -2 ACS redirect). */
  distance2019: number;
  fixes: string[];
}

export interface P2pTest {
  ok: boolean;
  distance: number;
  reason: string;
}

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

export class FabricError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FabricError';
  }
}

export class Fabric {
  readonly tree: PciTree;
  readonly seed: number;
  readonly policy: PolicyMode;
  private readonly mapCache = new Map<string, MapTypeVerdict>(); // written by: mapType() only
  private groupsCache: { groups: IommuGroup[]; groupOf: Map<PciDev, IommuGroup> } | null = null;

  constructor(tree: PciTree, seed: number) {
    this.tree = tree;
    this.seed = seed;
    this.policy = tree.policy;
  }

  /* ---------------- names ---------------- */

  /** A scenario device name, a PCI address ("0000:03:00.0" or "03:00.0"), or a free-text name. */
  resolve(nameOrBdf: string): PciDev | undefined {
    return (
      this.tree.byDevice.get(nameOrBdf) ??
      this.tree.byBdf.get(normalizeBdf(nameOrBdf)) ??
      this.tree.devs.find((d) => d.name === nameOrBdf)
    );
  }

  private must(nameOrBdf: string): PciDev {
    const d = this.resolve(nameOrBdf);
    if (!d) throw new FabricError(`p2pdma: '${nameOrBdf}' is not a PCI device of this topology (devices: ${this.deviceNames().join(', ') || 'none'})`);
    return d;
  }

  /** Scenario device names placed in the topology. */
  deviceNames(): string[] {
    return [...this.tree.byDevice.keys()];
  }

  /** Endpoint functions (what can be a P2P provider or client): scenario devices if any, else every endpoint behind a port. */
  endpoints(): PciDev[] {
    const named = this.tree.devs.filter((d) => d.device !== undefined);
    if (named.length) return named;
    return this.tree.devs.filter((d) => d.type === 'endpoint');
  }

  /** Display name of a function: scenario device name or PCI address. */
  nameOf(d: PciDev): string {
    return d.device ?? d.bdf;
  }

  /* ---------------- P2P policy ---------------- */

  /** The kernel's calc_map_type_and_dist(), without the policy mode and uncached. */
  calcMapTypeAndDist(provider: string, client: string): MapTypeResult {
    return calcMapTypeAndDist(this.tree, this.must(provider), this.must(client));
  }

  /** upstream_bridge_distance() of 2019. */
  upstreamBridgeDistance(a: string, b: string): number {
    return upstreamBridgeDistance(this.must(a), this.must(b));
  }

  /** May `client` DMA to `provider`'s memory, and how (policy mode applied; cached per pair). */
  mapType(provider: string, client: string): MapTypeVerdict {
    const key = `${provider}\0${client}`;
    const hit = this.mapCache.get(key);
    if (hit) return hit;
    const v = this.computeMapType(provider, client);
    this.mapCache.set(key, v);
    return v;
  }

  /** Number of cached pairs (for tests). */
  get cachedPairs(): number {
    return this.mapCache.size;
  }

  private computeMapType(provider: string, client: string): MapTypeVerdict {
    const P = this.resolve(provider);
    const C = this.resolve(client);
    if (!P || !C) {
      const bad = !P ? provider : client;
      return {
        map: 'not-supported',
        distance: -1,
        reason: `p2pdma: ${bad} cannot be used for peer-to-peer DMA as it is not a PCI device of this topology (devices: ${this.deviceNames().join(', ') || 'none'})`,
        path: [],
        policy: this.policy,
        kernel: null,
        distance2019: -1,
        fixes: [`place '${bad}' in topology.rootComplexes[…] below a port`],
      };
    }
    const k = calcMapTypeAndDist(this.tree, P, C);
    const d2019 = upstreamBridgeDistance(P, C);
    const path = this.describePath(P, C, k);
    let map = k.map;
    let reason = k.reason;
    let fixes = [...k.fixes];
    if (this.policy === 'rfc-v1') {
      const iommuRcs = [...new Set([P.rc, C.rc])].filter((rc) => rc.iommu);
      if (!(k.map === 'bus-addr' && iommuRcs.length === 0)) {
        map = 'not-supported';
        const why: string[] = [];
        const rfcFixes: string[] = [];
        if (iommuRcs.length) {
          why.push(`the IOMMU is on for ${iommuRcs.map((r) => r.name).join(' and ')}`);
          for (const rc of iommuRcs) {
            const off = fixHints.iommuOff(this.tree.inputKind, rc);
            if (!k.fixes.some((f) => f.includes(off))) rfcFixes.push(`set ${off}`);
          }
        }
        if (k.acsRedirects) why.push(`ACS redirect is set on ${k.walk.acsList.map((d) => `${d.bdf} [${formatAcs(acsRedirBits(d.acs))}]`).join(', ')}`);
        if (!k.walk.common) why.push('the devices are not in one PCIe sub-tree (no common upstream bridge)');
        if (k.map === 'thru-host-bridge') {
          why.push(`the transfer would have to cross root complex ${C.rc.name}${P.rc !== C.rc ? ` and ${P.rc.name}` : ''}`);
        }
        if (k.map !== 'bus-addr') rfcFixes.push(...k.fixes);
        if (k.map === 'thru-host-bridge' || (k.map === 'bus-addr' && iommuRcs.length)) {
          rfcFixes.push(`or set ${fixHints.policyIommu(this.tree.inputKind)} to allow P2P routed through (and translated by) the root complex`);
        }
        reason =
          `p2pdma: policy rfc-v1 (direct P2P only: IOMMU off, no ACS redirect, same sub-tree) refuses ${devLabel(C)} → ${devLabel(P)}: ` +
          `${why.join('; ')}. Kernel verdict: ${k.map}, distance ${k.distance} — ${k.reason}`;
        fixes = rfcFixes;
      }
    }
    if (map === 'thru-host-bridge' && k.acsRedirects && k.fixes.length) {
      reason += `; to route it directly below ${k.walk.common!.bdf} instead, ${k.fixes[0]}`;
    }
    if (this.policy === 'iommu' && map === 'thru-host-bridge') {
      const iommuRcs = [...new Set([P.rc, C.rc])].filter((rc) => rc.iommu);
      if (iommuRcs.length) reason += `; the IOMMU of ${iommuRcs.map((r) => r.name).join(' and ')} translates the peer addresses at the root complex`;
    }
    if (map !== 'bus-addr' || fixes.length) {
      if (map === 'not-supported' && fixes.length) reason += `. Fix: ${fixes.join('; ')}`;
    }
    return { map, distance: k.distance, reason, path, policy: this.policy, kernel: { map: k.map, distance: k.distance }, distance2019: d2019, fixes };
  }

  private describePath(P: PciDev, C: PciDev, k: MapTypeResult): string[] {
    const show = (d: PciDev) => {
      const redir = acsRedirBits(d.acs);
      const role = d.device ? PCI_DEV_TYPE_LABEL[d.type] : '';
      return `${devLabel(d)}${role ? ` ${role}` : ''}${redir ? ` [ACS redirect: ${formatAcs(redir)}]` : ''}`;
    };
    const w = k.walk;
    if (w.common) {
      const up = w.pathA.map(show);
      const down = w.pathB.map(show).reverse();
      if (up.length) up[up.length - 1] += ' ← common upstream bridge';
      return [...up, ...down];
    }
    // Root complexes of one socket meet in the CPU's own fabric; only different sockets cross the interconnect.
    const mid =
      P.rc === C.rc
        ? [`host bridge ${P.rc.name}`]
        : P.rc.socket === C.rc.socket
          ? [`host bridge ${P.rc.name}`, `host bridge ${C.rc.name} (same socket)`]
          : [`host bridge ${P.rc.name}`, 'socket interconnect', `host bridge ${C.rc.name}`];
    return [...w.pathA.map(show), ...mid, ...w.pathB.map(show).reverse()];
  }

  /** The RFC's pci_test_p2p(): 2019 rule, upstream_bridge_distance() ≥ 0. */
  pciTestP2p(a: string, b: string): P2pTest {
    const A = this.resolve(a);
    const B = this.resolve(b);
    if (!A || !B) return { ok: false, distance: -1, reason: `p2pdma: ${!A ? a : b} is not a PCI device` };
    const d = upstreamBridgeDistance(A, B);
    const k = calcMapTypeAndDist(this.tree, A, B);
    if (d >= 0) return { ok: true, distance: d, reason: `p2pdma: ${devLabel(A)} and ${devLabel(B)} share an upstream bridge, distance ${d}` };
    // -2: ACS redirect on the path; the 2019 rule stops there (no host bridge routing to weigh).
    return { ok: false, distance: d, reason: d === -2 && k.redirectReason ? `${k.redirectReason}. Fix: ${k.fixes[0]}` : `p2pdma: ${devLabel(A)} and ${devLabel(B)} do not share an upstream bridge` };
  }

  /** The RFC's device_test_p2p(): false for non-PCI devices, else the policy mode's verdict. */
  deviceTestP2p(a: string, b: string): P2pTest {
    const v = this.mapType(a, b);
    return { ok: v.map !== 'not-supported', distance: v.distance, reason: v.reason };
  }

  /**
   * p2pmem_find(clients): the provider closest to all clients (sum of
   * distances), ties broken by the scenario seed. `providers` defaults to
   * every endpoint.
   */
  p2pmemFind(clients: string[], providers?: string[]): { provider: string | null; distance: number; candidates: string[]; reason: string } {
    const cl = clients.map((c) => this.must(c));
    const pr = (providers ?? this.endpoints().map((d) => this.nameOf(d))).map((p) => this.must(p));
    const r = p2pmemFindMany(pr, cl, this.seed, (p, c) => this.mapType(this.nameOf(p), this.nameOf(c)));
    const names = r.candidates.map((d) => this.nameOf(d));
    if (!r.provider) {
      return { provider: null, distance: -1, candidates: [], reason: `p2pdma: no provider can serve all of ${clients.join(', ')} under policy ${this.policy}` };
    }
    const p = this.nameOf(r.provider);
    return {
      provider: p,
      distance: r.distance,
      candidates: names,
      reason: `p2pdma: ${p} is closest to ${clients.join(', ')} (total distance ${r.distance}${names.length > 1 ? `; tie between ${names.join(', ')}, broken by seed ${this.seed}` : ''})`,
    };
  }

  /* ---------------- IOMMU ---------------- */

  iommuEnabledFor(device: string): boolean {
    return this.must(device).rc.iommu;
  }

  iommuGroups(): IommuGroup[] {
    return this.groups().groups;
  }

  iommuGroupOf(device: string): number {
    const g = this.groups().groupOf.get(this.must(device));
    if (!g) throw new FabricError(`iommu: ${device} has no IOMMU group (host bridge function)`);
    return g.id;
  }

  private groups() {
    return (this.groupsCache ??= computeIommuGroups(this.tree));
  }

  /* ---------------- bandwidth model ---------------- */

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
      const dev = this.must(isRam(src) ? dst : src);
      const rc = this.ramRc(isRam(src) ? src : dst, dev);
      const hops = isRam(src)
        ? [{ res: `mem:${rc.name}`, weight: 1 }, { res: `rc:${rc.name}`, weight: 1 }, ...this.cross(rc, dev.rc), ...this.downLinks(dev, null)]
        : [...this.upLinks(dev, null), { res: `rc:${dev.rc.name}`, weight: 1 }, ...this.cross(dev.rc, rc), { res: `mem:${rc.name}`, weight: 1 }];
      return { via: 'dma', hops, crossing: hops.map((h) => h.res) };
    }
    const S = this.must(src);
    const D = this.must(dst);
    // The destination's memory is read/written by the source: provider = dst, client = src.
    const v = this.mapType(this.nameOf(D), this.nameOf(S));
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
