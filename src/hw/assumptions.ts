/*
 * The assumptions a P2P verdict rests on, stated beside it (text, --explain,
 * --json): what the input did not show and peervma had to assume, each with
 * the flag that states it. An lspci capture shows neither the IOMMU state
 * nor, without -vvv, the ACS bits; without -nn the host bridge id may be
 * unknown; the CPU's routing is inferred from the root complex id.
 */
import type { Fabric } from './fabric.js';
import type { PciDev } from './pci_tree.js';
import { formatAcs } from './acs.js';

export interface InputFacts {
  /** The input (an lspci capture) does not show the IOMMU state and no flag gave it. */
  readonly iommuAssumed: boolean;
  /** How the CPU's P2P routing was decided: a flag, recognised from the root complex id, or assumed. */
  readonly cpuRouting: 'flag' | 'recognised' | 'assumed' | 'scenario';
  /** Flags are the fix (lspci mode) rather than scenario keys. */
  readonly lspci: boolean;
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
  if (facts.iommuAssumed) out.push('IOMMU state not in the capture: assumed off (state it with --iommu on|off)');
  if (facts.cpuRouting === 'assumed') out.push(`CPU vendor and family unknown: assumed it ${fabric.tree.cpuRoutesP2p ? 'routes' : 'does not route'} P2P between root ports (--cpu-routes-p2p or --no-cpu-routes-p2p to state it)`);
  if (facts.cpuRouting === 'recognised') out.push('the CPU routes P2P between root ports: recognised from the root complex id (--no-cpu-routes-p2p to deny it)');
  return out;
}
