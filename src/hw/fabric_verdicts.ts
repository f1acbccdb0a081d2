/*
 * Fabric verdicts: may these two devices do P2P and how — the kernel's
 * answer, then the policy mode on top of it, cached per pair; the RFC's
 * pci_test_p2p() / device_test_p2p(); the closest provider for a client set.
 *
 * Mirrors (Linux): pci_p2pdma_map_type() + its per-pair cache
 * (provider->p2pdma->map_types, key map_types_idx(client)),
 * calc_map_type_and_dist(), pci_p2pdma_distance_many(),
 * pci_p2pmem_find_many(), the RFC's upstream_bridge_distance(),
 * pci_test_p2p() / device_test_p2p().
 *
 * Lifetime: one per Fabric, built with it; the tree is immutable, so cached
 * verdicts never go stale.
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
import {
  calcMapTypeAndDist,
  p2pmemFindMany,
  upstreamBridgeDistance,
  type MapTypeResult,
  type P2pMapType,
} from './p2pdma.js';
import { formatAcs, acsRedirBits } from './acs.js';
import { devLabel, PCI_DEV_TYPE_LABEL, type PciDev, type PciTree } from './pci_tree.js';
import type { PolicyMode } from './topology_schema.js';
import { deviceNames, endpoints, mustDev, nameOf, resolveDev } from './fabric_names.js';

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

export class FabricVerdicts {
  readonly tree: PciTree;
  readonly seed: number;
  readonly policy: PolicyMode;
  private readonly mapCache = new Map<string, MapTypeVerdict>(); // written by: mapType() only

  constructor(tree: PciTree, seed: number) {
    this.tree = tree;
    this.seed = seed;
    this.policy = tree.policy;
  }

  /** The kernel's calc_map_type_and_dist(), without the policy mode and uncached. */
  calcMapTypeAndDist(provider: string, client: string): MapTypeResult {
    return calcMapTypeAndDist(this.tree, mustDev(this.tree, provider), mustDev(this.tree, client));
  }

  /** upstream_bridge_distance() of 2019. */
  upstreamBridgeDistance(a: string, b: string): number {
    return upstreamBridgeDistance(mustDev(this.tree, a), mustDev(this.tree, b));
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
    const P = resolveDev(this.tree, provider);
    const C = resolveDev(this.tree, client);
    if (!P || !C) {
      const bad = !P ? provider : client;
      return {
        map: 'not-supported',
        distance: -1,
        reason: `p2pdma: ${bad} cannot be used for peer-to-peer DMA as it is not a PCI device of this topology (devices: ${deviceNames(this.tree).join(', ') || 'none'})`,
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
    const A = resolveDev(this.tree, a);
    const B = resolveDev(this.tree, b);
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
    const cl = clients.map((c) => mustDev(this.tree, c));
    const pr = (providers ?? endpoints(this.tree).map((d) => nameOf(d))).map((p) => mustDev(this.tree, p));
    const r = p2pmemFindMany(pr, cl, this.seed, (p, c) => this.mapType(nameOf(p), nameOf(c)));
    const names = r.candidates.map((d) => nameOf(d));
    if (!r.provider) {
      return { provider: null, distance: -1, candidates: [], reason: `p2pdma: no provider can serve all of ${clients.join(', ')} under policy ${this.policy}` };
    }
    const p = nameOf(r.provider);
    return {
      provider: p,
      distance: r.distance,
      candidates: names,
      reason: `p2pdma: ${p} is closest to ${clients.join(', ')} (total distance ${r.distance}${names.length > 1 ? `; tie between ${names.join(', ')}, broken by seed ${this.seed}` : ''})`,
    };
  }
}
