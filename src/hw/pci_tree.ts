/*
 * The in-memory PCI hierarchy: what the kernel's bus scan would build
 * (struct pci_dev / struct pci_bus / struct pci_host_bridge), from a
 * validated TopologySpec.
 *
 * Mirrors (Linux):
 *   drivers/pci/probe.c  pci_scan_bridge() depth-first bus numbering,
 *                        pci_host_bridge per root bus
 *   include/linux/pci.h  pci_upstream_bridge() (= PciDev.parent),
 *                        pci_name() (= PciDev.bdf), pci_pcie_type()
 *   drivers/pci/pci.c    pci_acs_init() → pci_enable_acs() → pci_disable_acs_redir()
 *   drivers/pci/p2pdma.c pci_host_bridge_dev() (which function stands for the host bridge)
 *
 * Invariants:
 *   - `parent` is the bridge whose secondary bus the function sits on, or
 *     null on a root bus (host bridges are not pci_devs in that chain).
 *   - Every bdf is unique; bus numbers of the subtree of a bridge lie in
 *     [secondary, subordinate].
 *   - ACS control bits are final after buildPciTree(): firmware value, then
 *     pci_std_enable_acs() when the RC's IOMMU is on, then
 *     pci=disable_acs_redir (in that order, as pci_enable_acs() does).
 *   - A tree is immutable after it is built (lifetime: owned by one Fabric).
 */
import type { InputKind } from './fix_hints.js';
import {
  acsMask,
  newAcsState,
  pciDisableAcsRedir,
  pciStdEnableAcs,
  type AcsState,
} from './acs.js';
import type {
  AcsSpec,
  EndpointSpec,
  FunctionSpec,
  PolicyMode,
  PortSpec,
  RootComplexSpec,
  SwitchSpec,
  TopologySpec,
} from './topology_schema.js';

export type PciDevType =
  | 'host-bridge'
  | 'root-port'
  | 'upstream-port'
  | 'downstream-port'
  | 'endpoint'
  | 'rc-endpoint';

export const PCI_DEV_TYPE_LABEL: Record<PciDevType, string> = {
  'host-bridge': 'host bridge',
  'root-port': 'root port',
  'upstream-port': 'switch upstream port',
  'downstream-port': 'switch downstream port',
  endpoint: 'endpoint',
  'rc-endpoint': 'root complex integrated endpoint',
};

export interface PcieLinkState {
  gen: number;
  width: number;
}

/** One PCI function (struct pci_dev). */
export interface PciDev {
  bdf: string; // "0000:03:00.0" — pci_name()
  domain: number;
  bus: number;
  devNum: number;
  fn: number;
  type: PciDevType;
  /** vendor:device, lowercase, when known. */
  id?: string;
  /** Scenario device placed here (endpoints only). */
  device?: string;
  /** Free text: switch/port/endpoint name from the scenario or lspci description. */
  name?: string;
  /** pci_upstream_bridge(); null on a root bus. */
  parent: PciDev | null;
  rc: RootComplex;
  acs: AcsState;
  /** The ACS state is the default for a port, not from the spec (an lspci capture without -vvv, say). */
  acsAssumed?: boolean;
  /** Bridges: the link below this port (root/downstream ports only). */
  link?: PcieLinkState;
  secondary?: number;
  subordinate?: number;
  /** Functions on this bridge's secondary bus. */
  children: PciDev[];
  /** Another function shares this bus/device number. */
  multifunction: boolean;
  /** Switch this port belongs to (upstream/downstream ports). */
  switchName?: string;
  /** Where in the scenario this came from, for messages ("topology.rootComplexes[0].ports[1]"). */
  specPath: string;
}

/** One root complex / host bridge (struct pci_host_bridge) and its root bus. */
export interface RootComplex {
  index: number;
  name: string;
  domain: number;
  bus: number;
  /** Host bridge vendor:device as pci_host_bridge_dev() would find it. */
  hostBridgeId?: string;
  /** The function standing for the host bridge (00.0, else a root port first on the bus). */
  hostBridgeDev?: PciDev;
  /** CPU socket (spec `socket`, else its own): root complexes of one socket share no interconnect hop. */
  socket: number;
  iommu: boolean;
  p2pEfficiency: number;
  fabricGBps: number;
  memGBps: number;
  /** Functions on the root bus, in devfn order. */
  rootBus: PciDev[];
  specPath: string;
}

export interface PciTree {
  rcs: RootComplex[];
  /** All functions, depth-first in bus order (lspci order). */
  devs: PciDev[];
  byBdf: Map<string, PciDev>;
  /** Scenario device name → function. */
  byDevice: Map<string, PciDev>;
  policy: PolicyMode;
  cpuRoutesP2p: boolean;
  /** Extra whitelist rows from the scenario. */
  whitelistExtra: { id: string; sameHostBridgeOnly: boolean; name?: string }[];
  disableAcsRedir: string[];
  interconnectGBps: number;
  /** Warnings of the build (log prefix p2pdma:/pci:), e.g. disable_acs_redir on a port without ACS. */
  warnings: string[];
  /** Where the topology came from: words the fixes (scenario keys or topo flags; fix_hints.ts). */
  inputKind: InputKind;
}

export class TopologyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TopologyError';
  }
}

const hex2 = (n: number) => n.toString(16).padStart(2, '0');
export function formatBdf(domain: number, bus: number, dev: number, fn: number): string {
  return `${domain.toString(16).padStart(4, '0')}:${hex2(bus)}:${hex2(dev)}.${fn}`;
}
/** "02:08.0" → "0000:02:08.0"; lowercases. */
export function normalizeBdf(s: string): string {
  const t = s.trim().toLowerCase();
  return /^[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$/.test(t) ? `0000:${t}` : t;
}

function acsFromSpec(a: false | AcsSpec | undefined, dflt: false | AcsSpec): AcsState {
  const s = a === undefined ? dflt : a;
  if (s === false) return newAcsState(null, 0);
  return newAcsState(acsMask(s.cap), acsMask(s.ctl));
}
const DEFAULT_PORT_ACS: AcsSpec = { cap: ['SV', 'RR', 'CR', 'UF'], ctl: [] };
const DEFAULT_LINK: PcieLinkState = { gen: 4, width: 16 };

/**
 * Build the tree. `deviceNames`: the scenario's devices; every one must be
 * placed exactly once, and every `device:` must name one of them (pass
 * `null` to skip that check, e.g. for an lspci import).
 *
 * The steps, in order (bus numbers are given depth-first as pci_scan_bridge()
 * does, so root complexes and the ports below them are placed in spec order):
 *   newTree → placeRootComplex (each) → markMultifunction → sortLikeLspci
 *   → checkAllDevicesPlaced → applyKernelAcs.
 */
export function buildPciTree(spec: TopologySpec, deviceNames: string[] | null, inputKind: InputKind = 'scenario'): PciTree {
  const b: TreeBuild = {
    tree: newTree(spec, inputKind),
    known: deviceNames ? new Set(deviceNames) : null,
    nextBus: 0,
    usedRcNames: new Set(),
  };
  spec.rootComplexes.forEach((r, i) => placeRootComplex(b, r, i));
  markMultifunction(b.tree);
  sortLikeLspci(b.tree);
  checkAllDevicesPlaced(b);
  applyKernelAcs(b.tree);
  return b.tree;
}

/**
 * State of one buildPciTree() call while it runs (lifetime: that call).
 * `nextBus` only grows: the next free bus number for a bridge without `bus:`.
 */
interface TreeBuild {
  tree: PciTree;
  /** The scenario's device names; null skips the device checks. */
  known: Set<string> | null;
  nextBus: number;
  usedRcNames: Set<string>;
}

/** Step 1: the empty tree with the scenario-wide settings (policy, whitelist, disable_acs_redir). */
function newTree(spec: TopologySpec, inputKind: InputKind): PciTree {
  return {
    rcs: [],
    devs: [],
    byBdf: new Map(),
    byDevice: new Map(),
    policy: spec.policy,
    cpuRoutesP2p: spec.cpuRoutesP2p,
    inputKind,
    whitelistExtra: spec.hostBridgeWhitelist.map((w) => ({ ...w, id: w.id.toLowerCase() })),
    disableAcsRedir: spec.disableAcsRedir.map(normalizeBdf),
    interconnectGBps: spec.interconnectGBps,
    warnings: [],
  };
}

/** Register a function: its bdf must be unique, its `device:` known and placed once. */
function registerDev(b: TreeBuild, d: PciDev): void {
  const { tree, known } = b;
  if (tree.byBdf.has(d.bdf)) {
    throw new TopologyError(`${d.specPath}: PCI address ${d.bdf} is used twice (also at ${tree.byBdf.get(d.bdf)!.specPath})`);
  }
  tree.byBdf.set(d.bdf, d);
  tree.devs.push(d);
  if (d.device !== undefined) {
    if (known && !known.has(d.device)) {
      throw new TopologyError(
        `${d.specPath}.device: '${d.device}' is not a device of this scenario (devices: ${[...known].join(', ') || 'none'})`,
      );
    }
    const prev = tree.byDevice.get(d.device);
    if (prev) throw new TopologyError(`${d.specPath}.device: '${d.device}' is placed twice (also at ${prev.specPath}, ${prev.bdf})`);
    tree.byDevice.set(d.device, d);
  }
}

/** A new function (struct pci_dev) at domain:bus:devNum.fn of `rc`, not yet registered. */
function mkDev(
  rc: RootComplex,
  bus: number,
  devNum: number,
  fn: number,
  type: PciDevType,
  parent: PciDev | null,
  acs: AcsState,
  specPath: string,
  extra: Partial<PciDev> = {},
): PciDev {
  return {
    bdf: formatBdf(rc.domain, bus, devNum, fn),
    domain: rc.domain,
    bus,
    devNum,
    fn,
    type,
    parent,
    rc,
    acs,
    children: [],
    multifunction: false,
    specPath,
    ...extra,
  };
}

/** Claim bus `want` (else the next free one) as a bridge's secondary bus; it must be above `above`. */
function claimBus(b: TreeBuild, want: number | undefined, above: number, tooLow: (bus: number) => string): number {
  const bus = want ?? b.nextBus;
  if (bus <= above) throw new TopologyError(tooLow(bus));
  b.nextBus = Math.max(b.nextBus, bus + 1);
  return bus;
}

const endpointFunctions = (e: EndpointSpec): FunctionSpec[] =>
  e.functions ?? [{ fn: 0, device: e.device, name: e.name, id: e.id, acs: e.acs }];

/** Place endpoints: the functions of one endpoint slot on `bus` (a function number listed twice is an error). */
function placeEndpoint(
  b: TreeBuild,
  rc: RootComplex,
  bus: number,
  e: EndpointSpec,
  parent: PciDev | null,
  type: 'endpoint' | 'rc-endpoint',
  path: string,
): PciDev[] {
  const devNum = e.slot !== undefined ? parseInt(e.slot, 16) : 0;
  const fns = endpointFunctions(e);
  const seen = new Set<number>();
  const out: PciDev[] = [];
  fns.forEach((f, i) => {
    if (seen.has(f.fn)) throw new TopologyError(`${path}.functions[${i}].fn: function ${f.fn} is listed twice`);
    seen.add(f.fn);
    const d = mkDev(rc, bus, devNum, f.fn, type, parent, acsFromSpec(f.acs, false), e.functions ? `${path}.functions[${i}]` : path, {
      id: f.id?.toLowerCase(),
      device: f.device,
      name: f.name ?? (e.functions ? undefined : e.name),
    });
    registerDev(b, d);
    out.push(d);
  });
  const mf = out.length > 1;
  for (const d of out) d.multifunction = mf;
  return out;
}

/** Place a port (root or switch downstream), its secondary bus, and the switch or endpoint below it. */
function placePort(
  b: TreeBuild,
  rc: RootComplex,
  bus: number,
  p: PortSpec,
  idx: number,
  parent: PciDev | null,
  type: 'root-port' | 'downstream-port',
  path: string,
  switchName?: string,
): PciDev {
  const [dn, fn] = p.slot ? p.slot.split('.').map((x) => parseInt(x, 16)) : [type === 'root-port' ? idx + 1 : idx, 0];
  const port = mkDev(rc, bus, dn, fn, type, parent, acsFromSpec(p.acs, DEFAULT_PORT_ACS), path, {
    id: p.id?.toLowerCase(),
    name: p.name,
    link: p.link ? { gen: p.link.gen, width: p.link.width } : { ...DEFAULT_LINK },
    switchName,
  });
  if (p.acs === undefined) port.acsAssumed = true;
  registerDev(b, port);
  port.secondary = claimBus(b, p.bus, bus, (sec) => `${path}.bus: secondary bus ${hex2(sec)} must be above the port's own bus ${hex2(bus)}`);
  if (p.switch) {
    placeSwitch(b, rc, port, p.switch, path);
  } else if (p.endpoint) {
    port.children.push(...placeEndpoint(b, rc, port.secondary, p.endpoint, port, 'endpoint', `${path}.endpoint`));
  }
  port.subordinate = b.nextBus - 1;
  return port;
}

/**
 * Place a switch below `port`: its upstream port on the port's secondary bus,
 * endpoints beside it, its internal bus, then endpoints and downstream ports there.
 */
function placeSwitch(b: TreeBuild, rc: RootComplex, port: PciDev, sw: SwitchSpec, path: string): void {
  const sec = port.secondary!;
  const swName = sw.name ?? `switch@${formatBdf(rc.domain, sec, 0, 0)}`;
  const up = mkDev(rc, sec, 0, 0, 'upstream-port', port, acsFromSpec(sw.upstreamAcs, false), `${path}.switch`, {
    id: sw.id?.toLowerCase(),
    name: sw.name,
    switchName: swName,
  });
  registerDev(b, up);
  port.children.push(up);
  (sw.beside ?? []).forEach((e, i) => {
    const fns = placeEndpoint(b, rc, sec, e, port, 'endpoint', `${path}.switch.beside[${i}]`);
    port.children.push(...fns);
    // Functions of the upstream port's own slot make it a multi-function device.
    const sameSlot = fns.filter((d) => d.devNum === 0);
    if (sameSlot.length > 0) for (const d of [up, ...sameSlot]) d.multifunction = true;
  });
  const usec = claimBus(b, sw.bus, sec, (bus) => `${path}.switch.bus: bus ${hex2(bus)} must be above ${hex2(sec)}`);
  up.secondary = usec;
  (sw.endpoints ?? []).forEach((e, i) => {
    up.children.push(...placeEndpoint(b, rc, usec, e, up, 'endpoint', `${path}.switch.endpoints[${i}]`));
  });
  sw.ports.forEach((dp, i) => {
    up.children.push(placePort(b, rc, usec, dp, i, up, 'downstream-port', `${path}.switch.ports[${i}]`, swName));
  });
  up.subordinate = b.nextBus - 1;
}

/** Step 2 (per root complex): its root bus, integrated endpoints, host bridge function, root ports. */
function placeRootComplex(b: TreeBuild, r: RootComplexSpec, i: number): void {
  const path = `topology.rootComplexes[${i}]`;
  const name = r.name ?? `rc${i}`;
  if (b.usedRcNames.has(name)) throw new TopologyError(`${path}.name: root complex name '${name}' is used twice`);
  b.usedRcNames.add(name);
  const bus = r.bus ?? (i === 0 ? 0 : b.nextBus);
  b.nextBus = Math.max(b.nextBus, bus + 1);
  const rc: RootComplex = {
    index: i,
    name,
    domain: r.domain,
    bus,
    hostBridgeId: r.id?.toLowerCase(),
    socket: r.socket ?? 256 + i, // a socket of its own: above any stated number (max 255)
    iommu: r.iommu,
    p2pEfficiency: r.p2pEfficiency,
    fabricGBps: r.fabricGBps,
    memGBps: r.memGBps,
    rootBus: [],
    specPath: path,
  };
  b.tree.rcs.push(rc);
  placeRootBusFunctions(b, rc, r);
  pickHostBridgeDev(rc);
}

/** Place the root bus: integrated endpoints, a host bridge function for `id:` if no 00.0, then root ports. */
function placeRootBusFunctions(b: TreeBuild, rc: RootComplex, r: RootComplexSpec): void {
  const { bus, specPath: path } = rc;
  // Integrated endpoints first (they may sit at 00.0 and be the host bridge function).
  r.endpoints.forEach((e, j) => {
    for (const d of placeEndpoint(b, rc, bus, e, null, 'rc-endpoint', `${path}.endpoints[${j}]`)) {
      // A plain function at 00.0 of a root bus is the host bridge (pci_host_bridge_dev()).
      if (d.devNum === 0 && d.fn === 0 && d.device === undefined) d.type = 'host-bridge';
      rc.rootBus.push(d);
    }
  });
  const has00 = rc.rootBus.some((d) => d.devNum === 0 && d.fn === 0) || r.ports.some((p) => p.slot === '00.0');
  if (!has00 && r.id) {
    const hb = mkDev(rc, bus, 0, 0, 'host-bridge', null, newAcsState(null, 0), path, { id: r.id.toLowerCase(), name: `${rc.name} host bridge` });
    registerDev(b, hb);
    rc.rootBus.push(hb);
  }
  r.ports.forEach((p, j) => {
    rc.rootBus.push(placePort(b, rc, bus, p, j, null, 'root-port', `${path}.ports[${j}]`));
  });
  rc.rootBus.sort((a, b2) => a.devNum * 8 + a.fn - (b2.devNum * 8 + b2.fn));
}

/** pci_host_bridge_dev(): 00.0 if present, else the first function if it is a root port. */
function pickHostBridgeDev(rc: RootComplex): void {
  const first = rc.rootBus[0];
  if (first && (first.devNum === 0 && first.fn === 0 || first.type === 'root-port')) {
    rc.hostBridgeDev = first;
    if (!rc.hostBridgeId && first.id) rc.hostBridgeId = first.id;
  }
}

/** Step 3: multifunction, i.e. other functions with the same bus/device number. */
function markMultifunction(tree: PciTree): void {
  const slots = new Map<string, PciDev[]>();
  for (const d of tree.devs) {
    const k = `${d.domain}:${d.bus}:${d.devNum}`;
    (slots.get(k) ?? slots.set(k, []).get(k)!).push(d);
  }
  for (const list of slots.values()) if (list.length > 1) for (const d of list) d.multifunction = true;
}

/** Step 4: order devs like lspci (domain, bus, devfn) and each bridge's children by devfn. */
function sortLikeLspci(tree: PciTree): void {
  tree.devs.sort((a, b) => a.domain - b.domain || a.bus - b.bus || a.devNum - b.devNum || a.fn - b.fn);
  for (const d of tree.devs) d.children.sort((a, b) => a.devNum * 8 + a.fn - (b.devNum * 8 + b.fn));
}

/** Step 5: every scenario device is placed somewhere in the topology. */
function checkAllDevicesPlaced(b: TreeBuild): void {
  if (!b.known) return;
  const missing = [...b.known].filter((n) => !b.tree.byDevice.has(n));
  if (missing.length) {
    throw new TopologyError(
      `topology: device${missing.length > 1 ? 's' : ''} ${missing.map((m) => `'${m}'`).join(', ')} not placed in the topology ` +
        `(add an endpoint with \`device: ${missing[0]}\` below a port)`,
    );
  }
}

/**
 * Step 6, wire ACS: pci_acs_init() → pci_enable_acs() for every function, in bus-scan order:
 * with an IOMMU (pci_request_acs() was called) pci_std_enable_acs(), then
 * pci_disable_acs_redir() for functions named by pci=disable_acs_redir=.
 */
function applyKernelAcs(tree: PciTree): void {
  const wanted = new Set(tree.disableAcsRedir);
  for (const d of tree.devs) {
    if (d.rc.iommu) pciStdEnableAcs(d.acs, `IOMMU on for ${d.rc.name}`);
    if (wanted.has(d.bdf)) {
      wanted.delete(d.bdf);
      if (!pciDisableAcsRedir(d.acs)) {
        tree.warnings.push(`pci: ${d.bdf}: cannot disable ACS redirect for this hardware as it does not have ACS capabilities`);
      }
    }
  }
  for (const w of wanted) tree.warnings.push(`pci: pci=disable_acs_redir names ${w}, which is not in the topology`);
}

/** "gpu0 0000:03:00.0" / "0000:02:08.0 (switch downstream port)" — for messages. */
export function devLabel(d: PciDev): string {
  if (d.device) return `${d.device} (${d.bdf})`;
  if (d.type === 'endpoint' || d.type === 'rc-endpoint') return d.name ? `${d.bdf} [${d.name}]` : d.bdf;
  return `${d.bdf} (${PCI_DEV_TYPE_LABEL[d.type]}${d.switchName ? ` of ${d.switchName}` : ''})`;
}

export function rcLabel(rc: RootComplex): string {
  return `${rc.name} [${rc.domain.toString(16).padStart(4, '0')}:${hex2(rc.bus)}]${rc.hostBridgeId ? ` ${rc.hostBridgeId}` : ''}`;
}
