/*
 * PCI peer-to-peer DMA policy: can provider and client talk, how, and how far.
 *
 * Mirrors (Linux drivers/pci/p2pdma.c), two generations side by side:
 *   v5.0 (2019, the RFC's base):  upstream_bridge_distance(),
 *       upstream_bridge_distance_warn(), pci_p2pdma_distance_many(),
 *       pci_p2pmem_find_many(); the RFC's pci_test_p2p()/device_test_p2p()
 *   current:  calc_map_type_and_dist(), cpu_supports_p2pdma(),
 *       pci_p2pdma_whitelist[], pci_host_bridge_dev(),
 *       __host_bridge_whitelist(), host_bridge_whitelist(),
 *       pci_p2pdma_map_type() (cached per pair, key map_types_idx(client))
 *   and pci_bridge_has_acs_redir() (in acs.ts).
 *
 * The distance, on this tree:
 *
 *     -+ Root Port
 *      \+ Switch Upstream Port
 *       +-+ Switch Downstream Port
 *       + \- Device A
 *       \-+ Switch Downstream Port
 *         \- Device B
 *
 *   same function 0; two functions of one device 2 (up to the port above,
 *   back down); A↔B 4 (A → its downstream port → common upstream port →
 *   other downstream port → B). No common upstream bridge (different root
 *   ports, different root complexes): 2019 says -1; today the distance is
 *   the number of ports walked to the top on both sides and the verdict is
 *   taken by the host bridge. Any bridge on the path — *including the common
 *   one*, because the walk up from A tests it before noticing it is shared —
 *   with RR, CR or EC in ACSCtl: 2019 says -2; today the pair is treated as
 *   "through the host bridge" and the same host-bridge test decides.
 *
 * Conservative by choice (as the kernel): a root complex that is not on the
 * whitelist and a CPU that is not known to route P2P means "not supported",
 * even though many such machines would work.
 *
 * Log/warning prefix: "p2pdma:". Every refusal names both ends, the port(s)
 * and bit(s) or the host bridge(s) to blame, and the fix.
 */
import { fixHints } from './fix_hints.js';
import { acsRedirBits, formatAcs } from './acs.js';
import { devLabel, rcLabel, type PciDev, type PciTree, type RootComplex } from './pci_tree.js';

export type P2pMapType = 'bus-addr' | 'thru-host-bridge' | 'not-supported';

/* ------------------------------------------------------------------ */
/* Host-bridge whitelist and CPU table (policy as data)                */
/* ------------------------------------------------------------------ */

export interface WhitelistEntry {
  /** vendor:device of the host bridge function (00.0, or a root port first on the root bus). "1ae0:*" = any device. */
  readonly id: string;
  /** REQ_SAME_HOST_BRIDGE: only P2P between ports of this one host bridge. */
  readonly sameHostBridgeOnly: boolean;
  readonly name: string;
}

/** pci_p2pdma_whitelist[] of current kernels, in order. */
export const PCI_P2PDMA_WHITELIST: readonly WhitelistEntry[] = [
  /* Intel Xeon E5/Core i7 */
  { id: '8086:3c00', sameHostBridgeOnly: true, name: 'Intel Xeon E5/Core i7' },
  { id: '8086:3c01', sameHostBridgeOnly: true, name: 'Intel Xeon E5/Core i7' },
  /* Intel Xeon E7 v3/Xeon E5 v3/Core i7 */
  { id: '8086:2f00', sameHostBridgeOnly: true, name: 'Intel Xeon E7 v3/Xeon E5 v3/Core i7' },
  { id: '8086:2f01', sameHostBridgeOnly: true, name: 'Intel Xeon E7 v3/Xeon E5 v3/Core i7' },
  /* Intel Skylake-E */
  { id: '8086:2030', sameHostBridgeOnly: false, name: 'Intel Skylake-E root port A' },
  { id: '8086:2031', sameHostBridgeOnly: false, name: 'Intel Skylake-E root port B' },
  { id: '8086:2032', sameHostBridgeOnly: false, name: 'Intel Skylake-E root port C' },
  { id: '8086:2033', sameHostBridgeOnly: false, name: 'Intel Skylake-E root port D' },
  { id: '8086:2020', sameHostBridgeOnly: false, name: 'Intel Skylake-E DMI3 registers' },
  /* Intel Ice Lake-SP (3rd Gen Xeon Scalable) */
  { id: '8086:09a2', sameHostBridgeOnly: false, name: 'Intel Ice Lake-SP' },
  /* Intel accelerators that are root-complex integrated (DSA, IAA, QAT) */
  { id: '8086:0b25', sameHostBridgeOnly: false, name: 'Intel DSA (Sapphire Rapids)' },
  { id: '8086:0cfe', sameHostBridgeOnly: false, name: 'Intel IAA (Sapphire Rapids)' },
  { id: '8086:4940', sameHostBridgeOnly: false, name: 'Intel QAT 4xxx' },
  /* Google SoCs */
  { id: '1ae0:*', sameHostBridgeOnly: false, name: 'Google SoC' },
];

/**
 * cpu_supports_p2pdma(): "Any AMD CPU whose family ID is Zen or newer
 * supports p2pdma". We cannot read CPUID of an emulated or imported
 * machine, so the scenario says `cpuRoutesP2p`, and imports recognise the
 * AMD Zen root complexes below (vendor 1022, family 17h and later).
 */
export const AMD_ZEN_ROOT_COMPLEXES: readonly { id: string; name: string }[] = [
  { id: '1022:1450', name: 'AMD Family 17h (Models 00h-0fh) Root Complex (Zen/Zen+)' },
  { id: '1022:15d0', name: 'AMD Raven/Raven2 Root Complex' },
  { id: '1022:1480', name: 'AMD Starship/Matisse Root Complex (Zen 2)' },
  { id: '1022:1630', name: 'AMD Renoir/Cezanne Root Complex' },
  { id: '1022:14b5', name: 'AMD Family 19h Root Complex' },
  { id: '1022:14d8', name: 'AMD Family 19h (Model 61h) Root Complex (Raphael)' },
  { id: '1022:14e8', name: 'AMD Family 19h (Model 70h) Root Complex (Phoenix)' },
  { id: '1022:14a4', name: 'AMD Family 19h (Model 10h) Root Complex (Genoa)' },
];

/* ------------------------------------------------------------------ */
/* 2019: upstream_bridge_distance()                                    */
/* ------------------------------------------------------------------ */

export interface BridgeWalk {
  /** Nearest common upstream bridge (a pci_dev; may be a or b itself), or null. */
  common: PciDev | null;
  /** dist_a + dist_b as the kernel leaves them (also when there is no common bridge). */
  distance: number;
  /** Functions on the path with RR/CR/EC in ACSCtl, in the order the kernel lists them. */
  acsList: PciDev[];
  /** Path walked: a … common … b (or a … top, b … top when there is none). */
  pathA: PciDev[];
  pathB: PciDev[];
}

/**
 * The walk shared by both generations: for each ancestor x of a (a itself
 * first), test x for ACS redirect, then look for x among b's ancestors.
 * On the first hit, test b's ancestors below it for ACS redirect.
 */
export function walkUpstreamBridges(a: PciDev, b: PciDev): BridgeWalk {
  const acsList: PciDev[] = [];
  const pathA: PciDev[] = [];
  let distA = 0;
  let distB = 0;
  for (let x: PciDev | null = a; x; x = x.parent) {
    pathA.push(x);
    distB = 0;
    if (acsRedirBits(x.acs)) acsList.push(x);
    for (let bb: PciDev | null = b; bb; bb = bb.parent) {
      if (bb === x) {
        const pathB: PciDev[] = [];
        for (let y: PciDev | null = b; y && y !== x; y = y.parent) {
          pathB.push(y);
          if (acsRedirBits(y.acs)) acsList.push(y);
        }
        return { common: x, distance: distA + distB, acsList, pathA, pathB };
      }
      distB++;
    }
    distA++;
  }
  const pathB: PciDev[] = [];
  for (let y: PciDev | null = b; y; y = y.parent) pathB.push(y);
  return { common: null, distance: distA + distB, acsList, pathA, pathB };
}

/**
 * upstream_bridge_distance() of v5.0: hop count through the nearest common
 * upstream bridge; -1 when there is none; -2 when a bridge on the path has
 * ACS redirect set.
 */
export function upstreamBridgeDistance(a: PciDev, b: PciDev): number {
  const w = walkUpstreamBridges(a, b);
  if (!w.common) return -1;
  if (w.acsList.length) return -2;
  return w.distance;
}

/* ------------------------------------------------------------------ */
/* current: calc_map_type_and_dist()                                   */
/* ------------------------------------------------------------------ */

export interface HostBridgeVerdict {
  ok: boolean;
  /** How the verdict was reached, one clause. */
  why: string;
  /** The host bridge(s) to blame when !ok. */
  blame: RootComplex[];
}

export function findWhitelistEntry(tree: PciTree, id: string | undefined): WhitelistEntry | undefined {
  if (!id) return undefined;
  const [v] = id.split(':');
  const rows: WhitelistEntry[] = [
    ...PCI_P2PDMA_WHITELIST,
    ...tree.whitelistExtra.map((w) => ({ id: w.id, sameHostBridgeOnly: w.sameHostBridgeOnly, name: w.name ?? 'scenario whitelist' })),
  ];
  return rows.find((e) => e.id === id || e.id === `${v}:*`);
}

/** __host_bridge_whitelist(host, same_host_bridge). */
function hostBridgeOk(tree: PciTree, rc: RootComplex, sameHostBridge: boolean): { ok: boolean; why: string } {
  const label = rcLabel(rc);
  if (!rc.hostBridgeDev) {
    return { ok: false, why: `host bridge ${label} has no 00.0 function or root port to identify it, so it cannot match the P2PDMA whitelist` };
  }
  if (!rc.hostBridgeId) {
    const how = tree.inputKind === 'lspci' ? ' (the capture lacks -nn: state it with --host-bridge or recapture with `lspci -tvnn`)' : '';
    return { ok: false, why: `host bridge ${label}: its function ${rc.hostBridgeDev.bdf} has no vendor:device id${how}, so it cannot match the P2PDMA whitelist` };
  }
  const e = findWhitelistEntry(tree, rc.hostBridgeId);
  if (!e) return { ok: false, why: `host bridge ${label} is not in the P2PDMA whitelist` };
  if (e.sameHostBridgeOnly && !sameHostBridge) {
    return { ok: false, why: `host bridge ${label} (${e.name}) is whitelisted only for P2P within the same host bridge (REQ_SAME_HOST_BRIDGE)` };
  }
  return { ok: true, why: `host bridge ${label} (${e.name}) is on the P2PDMA whitelist` };
}

/** host_bridge_whitelist(a, b) — plus cpu_supports_p2pdma() first, as calc_map_type_and_dist() asks. */
export function hostBridgeVerdict(tree: PciTree, a: PciDev, b: PciDev): HostBridgeVerdict {
  if (tree.cpuRoutesP2p) {
    return { ok: true, why: `the CPU routes P2P through its host bridges (cpu_supports_p2pdma(): AMD Zen or newer; ${fixHints.cpuRoutesSource(tree.inputKind)})`, blame: [] };
  }
  if (a.rc === b.rc) {
    const r = hostBridgeOk(tree, a.rc, true);
    return { ...r, blame: r.ok ? [] : [a.rc] };
  }
  const ra = hostBridgeOk(tree, a.rc, false);
  const rb = hostBridgeOk(tree, b.rc, false);
  if (ra.ok && rb.ok) return { ok: true, why: `${ra.why} and ${rb.why}`, blame: [] };
  const bad = [ra.ok ? null : ra.why, rb.ok ? null : rb.why].filter((x): x is string => !!x);
  const blame = [ra.ok ? null : a.rc, rb.ok ? null : b.rc].filter((x): x is RootComplex => !!x);
  return { ok: false, why: `the devices are on different host bridges and ${bad.join('; ')}`, blame };
}

export interface MapTypeResult {
  map: P2pMapType;
  distance: number;
  walk: BridgeWalk;
  /** ACS redirect seen on the path (acs_redirects). */
  acsRedirects: boolean;
  hostBridge?: HostBridgeVerdict;
  /** The kernel's messages, "p2pdma:" prefixed, as a person reads them. */
  reason: string;
  /** Suggested fixes (kernel parameter, scenario key). Empty when map is bus-addr. */
  fixes: string[];
  /** The ACS-redirect sentence alone (when acsRedirects), for the 2019 rule's message (pci_test_p2p()). */
  redirectReason?: string;
}

/** "0000:02:08.0 [RR CR] (set by pci_enable_acs(): IOMMU on for rc0)" */
function describeRedir(d: PciDev): string {
  const bits = formatAcs(acsRedirBits(d.acs));
  const who = d.acs.changes.find((c) => c.startsWith('pci_enable_acs()'));
  const cause = who ? `, set by pci_enable_acs() because the IOMMU of ${d.rc.name} is on` : ', set before the kernel touched ACS (firmware, scenario or as captured)';
  return `${devLabel(d)} [ACSCtl ${bits}${cause}]`;
}

/** calc_map_type_and_dist(provider, client) of current kernels, with its messages. */
export function calcMapTypeAndDist(tree: PciTree, provider: PciDev, client: PciDev): MapTypeResult {
  const w = walkUpstreamBridges(provider, client);
  const P = devLabel(provider);
  const C = devLabel(client);
  const fixes: string[] = [];
  let reason: string;
  const redirect = !!w.common && w.acsList.length > 0;

  if (w.common && !redirect) {
    const via = w.common === provider && w.common === client
      ? 'they are the same function'
      : `they share upstream bridge ${devLabel(w.common)}`;
    reason = `p2pdma: ${C} and provider ${P}: ${via}, no ACS redirect on the path; distance ${w.distance}; TLPs are routed by bus address below that bridge`;
    return { map: 'bus-addr', distance: w.distance, walk: w, acsRedirects: false, reason, fixes };
  }

  let redirectReason: string | undefined;
  if (redirect) {
    const list = w.acsList.map((d) => d.bdf).join(';');
    redirectReason = reason =
      `p2pdma: ${C}: ACS redirect is set between the client and provider ${P} ` +
      `(common upstream bridge ${devLabel(w.common!)}): ${w.acsList.map(describeRedir).join(', ')}; ` +
      `peer TLPs are forced up to the root complex ${client.rc.name}`;
    fixes.push(
      `to disable ACS redirect for this path, add the kernel parameter: pci=disable_acs_redir=${list} ` +
        fixHints.disableAcsRedir(tree.inputKind, w.acsList.map((d) => d.bdf)),
    );
    const iommuRcs = [...new Set(w.acsList.filter((d) => d.acs.changes.some((c) => c.startsWith('pci_enable_acs()'))).map((d) => d.rc))];
    for (const rc of iommuRcs) {
      fixes.push(`or turn the IOMMU off for ${rc.name} (${fixHints.iommuOff(tree.inputKind, rc)}) — the redirect bits were set because an IOMMU asked for ACS; note that this also merges IOMMU groups`);
    }
  } else {
    const topA = w.pathA[w.pathA.length - 1];
    const topB = w.pathB[w.pathB.length - 1];
    const where = provider.rc === client.rc
      ? `${P} is below ${devLabel(topA)} and ${C} below ${devLabel(topB)}, both on ${rcLabel(client.rc)}`
      : `${P} is on ${rcLabel(provider.rc)} and ${C} on ${rcLabel(client.rc)}`;
    reason = `p2pdma: ${C} and provider ${P} do not share an upstream bridge (${where}); distance ${w.distance} through the host bridge`;
  }

  const hb = hostBridgeVerdict(tree, provider, client);
  if (hb.ok) {
    reason += `; ${hb.why}, so the transfer goes through the host bridge`;
    return { map: 'thru-host-bridge', distance: w.distance, walk: w, acsRedirects: redirect, hostBridge: hb, reason, fixes, redirectReason };
  }
  reason +=
    `; p2pdma: ${C} cannot be used for peer-to-peer DMA as the client and provider ${P} ` +
    `do not share an upstream bridge or whitelisted host bridge: ${hb.why}`;
  if (!redirect) {
    fixes.push('place both devices below one PCIe switch (a common upstream bridge)');
  }
  const ids = hb.blame.map((rc) => `${rc.name}${rc.hostBridgeId ? ` (${rc.hostBridgeId})` : ''}`).join(', ');
  fixes.push(
    `or use a platform whose host bridge is whitelisted (pci_p2pdma_whitelist[]; ${fixHints.whitelist(tree.inputKind, ids)}) ` +
      `or whose CPU routes P2P (AMD Zen; ${fixHints.cpuRoutes(tree.inputKind)})`,
  );
  return { map: 'not-supported', distance: w.distance, walk: w, acsRedirects: redirect, hostBridge: hb, reason, fixes, redirectReason };
}

/* ------------------------------------------------------------------ */
/* Distances over several clients and provider choice                   */
/* ------------------------------------------------------------------ */

/**
 * pci_p2pdma_distance_many(): sum of distances from provider to every
 * client, -1 if any client is "not supported" (by `verdict`, which lets the
 * caller apply a policy mode on top of the kernel's answer).
 */
export function p2pdmaDistanceMany(
  provider: PciDev,
  clients: PciDev[],
  verdict: (p: PciDev, c: PciDev) => { map: P2pMapType; distance: number },
): number {
  if (clients.length === 0) return -1;
  let total = 0;
  for (const c of clients) {
    const r = verdict(provider, c);
    if (r.map === 'not-supported') return -1;
    total += r.distance;
  }
  return total;
}

/** Small seeded PRNG (mulberry32) so "chosen at random" is reproducible per scenario seed. */
export function mulberry32(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function hashString(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/**
 * pci_p2pmem_find_many(): among `providers`, the one with the smallest
 * total distance to all clients; "if multiple providers are an equal
 * distance away, one will be chosen at random" — here by a PRNG seeded
 * from the scenario seed and the client list, so runs are reproducible.
 */
export function p2pmemFindMany(
  providers: PciDev[],
  clients: PciDev[],
  seed: number,
  verdict: (p: PciDev, c: PciDev) => { map: P2pMapType; distance: number },
): { provider: PciDev | null; distance: number; candidates: PciDev[] } {
  let best = Infinity;
  let closest: PciDev[] = [];
  for (const p of providers) {
    const d = p2pdmaDistanceMany(p, clients, verdict);
    if (d < 0 || d > best) continue;
    if (d < best) {
      best = d;
      closest = [];
    }
    closest.push(p);
  }
  if (!closest.length) return { provider: null, distance: -1, candidates: [] };
  const rnd = mulberry32(seed ^ hashString(clients.map((c) => c.bdf).join(',')));
  const pick = closest[Math.floor(rnd() * closest.length)];
  return { provider: pick, distance: best, candidates: closest };
}
