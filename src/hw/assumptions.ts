/*
 * The assumptions a P2P verdict rests on, stated beside it (text, --explain,
 * --json): what the input did not show and peervma had to assume, each with
 * the flag that states it. An lspci capture shows neither the IOMMU state
 * nor, without -vvv, the ACS bits; without -nn the host bridge id may be
 * unknown; the CPU's routing is inferred from the root complex id; sockets
 * come from "NUMA node:" lines (lspci_sockets.ts), else are assumed one.
 */
import type { Fabric } from './fabric.js';
import type { PciDev, RootComplex } from './pci_tree.js';
import { formatAcs } from './acs.js';
import type { SocketSource } from './lspci_sockets.js';

export interface InputFacts {
  /** The input (an lspci capture) does not show the IOMMU state and no flag gave it. */
  readonly iommuAssumed: boolean;
  /** How the CPU's P2P routing was decided: a flag, recognised from the root complex id, or assumed. */
  readonly cpuRouting: 'flag' | 'recognised' | 'assumed' | 'scenario';
  /** Flags are the fix (lspci mode) rather than scenario keys. */
  readonly lspci: boolean;
  /** lspci mode: how each root complex's socket was decided (absent: stated by the scenario or a flag). */
  readonly sockets?: SocketSource;
}

const busOf = (rc: RootComplex) => rc.bus.toString(16).padStart(2, '0');
const NO_NUMA = 'not in the capture (`sudo lspci -nnvvv` prints "NUMA node: N" where the firmware gives one)';

/** The socket assumption between two root complexes, if any. */
function socketAssumption(a: RootComplex, b: RootComplex, src: SocketSource | undefined): string | null {
  if (!src || a === b) return null;
  const assumed = [a, b].filter((rc) => src.assumed.includes(rc.name));
  if (assumed.length) {
    return `socket of ${assumed.map((rc) => rc.name).join(' and ')} ${NO_NUMA}: assumed ${a.socket === b.socket ? `on one socket${assumed.length === 2 ? '' : ` with ${(assumed[0] === a ? b : a).name}`}, so no socket interconnect between them` : `on socket ${assumed[0].socket}`} (state it with --socket ${assumed.map((rc) => `${busOf(rc)}=N`).join(',')})`;
  }
  const na = src.numa.get(a.name);
  const nb = src.numa.get(b.name);
  if (na !== undefined && nb !== undefined && na !== nb) {
    return `sockets taken from NUMA nodes (${a.name} on node ${na}, ${b.name} on node ${nb}): with sub-NUMA clustering (Intel SNC, AMD NPS2/NPS4) one socket has several nodes (state it with --socket ${busOf(a)}=N,${busOf(b)}=N)`;
  }
  return null;
}

function ancestors(d: PciDev): PciDev[] {
  const out: PciDev[] = [];
  for (let p = d.parent; p; p = p.parent) out.push(p);
  return out;
}

/** Assumptions behind the verdict for provider `a`, client `b`. */
export function verdictAssumptions(fabric: Fabric, a: string, b: string, facts: InputFacts): string[] {
  const A = fabric.resolve(a);
  const B = fabric.resolve(b);
  if (!A || !B) return [];
  const out: string[] = [];
  const upA = ancestors(A);
  const upB = ancestors(B);
  const common = upA.find((p) => upB.includes(p));
  const path = [...upA.slice(0, common ? upA.indexOf(common) + 1 : undefined), ...upB.slice(0, common ? upB.indexOf(common) : undefined)];
  const assumedAcs = facts.lspci ? path.filter((p) => p.acsAssumed) : [];
  if (assumedAcs.length > 0) {
    const acs = assumedAcs[0].acs;
    const shown = acs.cap === null ? 'no ACS capability' : `ACS capable (${formatAcs(acs.cap)}) with ${acs.fwCtl ? formatAcs(acs.fwCtl) : 'nothing'} enabled by firmware`;
    out.push(`ACS state of ${assumedAcs.map((p) => p.bdf).join(', ')} unknown: assumed ${shown}${facts.lspci ? ' (pass `sudo lspci -nnvvv` output with --lspci-vvv for the real ACSCtl bits)' : ''}`);
  }
  for (const rc of new Set([A.rc, B.rc])) {
    if (facts.lspci && !rc.hostBridgeId) {
      const bus = rc.bus.toString(16).padStart(2, '0');
      out.push(`host bridge id of ${rc.name} unknown: assumed not on the P2PDMA whitelist${facts.lspci ? ` (state it with --host-bridge ${bus}=VVVV:DDDD, or recapture with \`lspci -tvnn\`)` : ''}`);
    }
  }
  const socket = socketAssumption(A.rc, B.rc, facts.sockets);
  if (socket) out.push(socket);
  if (facts.iommuAssumed) out.push(`IOMMU state not in the capture: assumed ${A.rc.iommu ? 'on' : 'off'} (state it with --iommu on|off)`);
  const crossesHost = !common || common.type === 'host-bridge' || A.rc !== B.rc;
  if (crossesHost && facts.cpuRouting !== 'flag' && facts.cpuRouting !== 'scenario') {
    const routes = fabric.tree.cpuRoutesP2p;
    out.push(
      facts.cpuRouting === 'recognised'
        ? `the CPU routes P2P between root ports: recognised from the root complex id (--no-cpu-routes-p2p to deny it)`
        : `CPU vendor and family unknown: assumed it ${routes ? 'routes' : 'does not route'} P2P between root ports (--cpu-routes-p2p or --no-cpu-routes-p2p to state it)`,
    );
  }
  return out;
}

/** The assumptions of the whole input, for the text report (each verdict's own are in --explain and --json). */
export function inputAssumptions(fabric: Fabric, facts: InputFacts): string[] {
  if (!facts.lspci) return [];
  const out: string[] = [];
  const ports = fabric.tree.devs.filter((d) => d.acsAssumed);
  if (ports.length > 0) {
    const shown = ports.slice(0, 6).map((p) => p.bdf).join(', ') + (ports.length > 6 ? `, and ${ports.length - 6} more` : '');
    out.push(`ACS state of ${ports.length} port(s) unknown (${shown}): assumed capable with nothing enabled by firmware (pass \`sudo lspci -nnvvv\` output with --lspci-vvv for the real ACSCtl bits)`);
  }
  for (const rc of fabric.tree.rcs) {
    if (!rc.hostBridgeId) out.push(`host bridge id of ${rc.name} unknown: assumed not on the P2PDMA whitelist (state it with --host-bridge ${rc.bus.toString(16).padStart(2, '0')}=VVVV:DDDD, or recapture with \`lspci -tvnn\`)`);
  }
  const src = facts.sockets;
  if (src && fabric.tree.rcs.length > 1) {
    const assumed = fabric.tree.rcs.filter((rc) => src.assumed.includes(rc.name));
    if (assumed.length === fabric.tree.rcs.length) {
      out.push(`sockets ${NO_NUMA}: all ${assumed.length} root buses assumed on one socket, so no socket interconnect between them (state each with --socket BUS=N, e.g. --socket ${busOf(assumed[assumed.length - 1])}=1)`);
    } else if (assumed.length) {
      out.push(`socket of ${assumed.map((rc) => rc.name).join(', ')} ${NO_NUMA}: assumed socket ${assumed[0].socket} (state it with --socket ${busOf(assumed[0])}=N)`);
    }
    const nodes = new Set(src.numa.values());
    if (nodes.size > 1) out.push(`sockets taken from NUMA nodes ${[...nodes].sort((x, y) => x - y).join(', ')}: with sub-NUMA clustering (Intel SNC, AMD NPS2/NPS4) one socket has several nodes (state it with --socket BUS=N)`);
  }
  if (facts.iommuAssumed) out.push('IOMMU state not in the capture: assumed off (state it with --iommu on|off)');
  if (facts.cpuRouting === 'assumed') out.push(`CPU vendor and family unknown: assumed it ${fabric.tree.cpuRoutesP2p ? 'routes' : 'does not route'} P2P between root ports (--cpu-routes-p2p or --no-cpu-routes-p2p to state it)`);
  if (facts.cpuRouting === 'recognised') out.push('the CPU routes P2P between root ports: recognised from the root complex id (--no-cpu-routes-p2p to deny it)');
  return out;
}
