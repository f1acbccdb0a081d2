/*
 * `peervma topo --lspci` flags that state what a capture does not show,
 * applied to the imported TopologySpec before the fabric is built:
 *   --host-bridge BUS=VVVV:DDDD   the host bridge id of a root bus (no -nn)
 *   --iommu-rc BUS=on|off         the IOMMU of one root complex (pci_enable_acs()
 *                                 then sets ACS redirect on its ports)
 *   --acs-redir BDF=on|off        ACS P2P redirect (RR CR) of one port as firmware left it
 *   --socket BUS=N                the CPU socket of a root bus (no "NUMA node:" in the capture)
 * Each names the root bus or port it could not find.
 */
import type { AcsBit } from '../hw/acs.js';
import { formatBdf } from '../hw/pci_tree.js';
import type { PortSpec, TopologySpec } from '../hw/topology_schema.js';

export class StateFlagError extends Error {}

function items(list: string | undefined): string[] {
  return list ? list.split(',').map((x) => x.trim()).filter(Boolean) : [];
}

const hex = (n: number, w: number) => n.toString(16).padStart(w, '0');

function rootOf(spec: TopologySpec, flag: string, item: string, domain: number, bus: number) {
  const rc = spec.rootComplexes.find((r) => r.domain === domain && r.bus === bus);
  if (!rc) throw new StateFlagError(`${flag}: no root bus ${hex(domain, 4)}:${hex(bus, 2)} in the capture (root buses: ${spec.rootComplexes.map((r) => hex(r.bus ?? 0, 2)).join(', ')}), in '${item}'`);
  return rc;
}

export function applyHostBridges(spec: TopologySpec, list: string | undefined): void {
  for (const item of items(list)) {
    const m = /^(?:([0-9a-fA-F]{4}):)?([0-9a-fA-F]{2})=([0-9a-fA-F]{4}:[0-9a-fA-F]{4})$/.exec(item);
    if (!m) throw new StateFlagError(`--host-bridge: expected BUS=VVVV:DDDD (e.g. 00=8086:2020 or 0000:80=1022:14a4), got '${item}'`);
    rootOf(spec, '--host-bridge', item, m[1] ? parseInt(m[1], 16) : 0, parseInt(m[2], 16)).id = m[3].toLowerCase();
  }
}

export function applyIommuPerRc(spec: TopologySpec, list: string | undefined): void {
  for (const item of items(list)) {
    const m = /^(?:([0-9a-fA-F]{4}):)?([0-9a-fA-F]{2})=(on|off)$/.exec(item);
    if (!m) throw new StateFlagError(`--iommu-rc: expected BUS=on|off (e.g. 3a=on), got '${item}'`);
    rootOf(spec, '--iommu-rc', item, m[1] ? parseInt(m[1], 16) : 0, parseInt(m[2], 16)).iommu = m[3] === 'on';
  }
}

/** Set the socket of each named root bus; returns the names of the root complexes it set. */
export function applySockets(spec: TopologySpec, list: string | undefined): string[] {
  const set: string[] = [];
  for (const item of items(list)) {
    const m = /^(?:([0-9a-fA-F]{4}):)?([0-9a-fA-F]{2})=(\d{1,3})$/.exec(item);
    if (!m || parseInt(m[3], 10) > 255) throw new StateFlagError(`--socket: expected BUS=N with N 0…255 (e.g. 80=1), got '${item}'`);
    const rc = rootOf(spec, '--socket', item, m[1] ? parseInt(m[1], 16) : 0, parseInt(m[2], 16));
    rc.socket = parseInt(m[3], 10);
    set.push(rc.name ?? '');
  }
  return set;
}

/** Every port of the spec with its BDF (root ports, then switch downstream ports, depth first). */
function* portsWithBdf(spec: TopologySpec): Generator<{ bdf: string; port: PortSpec }> {
  function* walk(domain: number, bus: number, ports: readonly PortSpec[]): Generator<{ bdf: string; port: PortSpec }> {
    for (const p of ports) {
      const [dev, fn] = (p.slot ?? '00.0').split('.').map((x) => parseInt(x, 16));
      yield { bdf: formatBdf(domain, bus, dev, fn ?? 0), port: p };
      if (p.switch && p.switch.bus !== undefined) yield* walk(domain, p.switch.bus, p.switch.ports);
    }
  }
  for (const rc of spec.rootComplexes) yield* walk(rc.domain, rc.bus ?? 0, rc.ports);
}

const REDIRECT: readonly AcsBit[] = ['RR', 'CR'];

export function applyAcsRedir(spec: TopologySpec, list: string | undefined): void {
  for (const item of items(list)) {
    const m = /^((?:[0-9a-fA-F]{4}:)?[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7])=(on|off)$/.exec(item);
    if (!m) throw new StateFlagError(`--acs-redir: expected BDF=on|off (e.g. 0000:3c:08.0=off), got '${item}'`);
    const bdf = m[1].length === 7 ? `0000:${m[1]}` : m[1];
    const found = [...portsWithBdf(spec)].find((x) => x.bdf === bdf.toLowerCase());
    if (!found) throw new StateFlagError(`--acs-redir: ${bdf} is not a root or switch downstream port of the capture`);
    const acs = found.port.acs;
    if (acs === false) throw new StateFlagError(`--acs-redir: ${bdf} has no ACS capability in the capture`);
    const cap = acs?.cap ?? ['SV', 'RR', 'CR', 'UF'];
    const ctl = (acs?.ctl ?? []).filter((b) => !REDIRECT.includes(b));
    found.port.acs = { cap, ctl: m[2] === 'on' ? [...ctl, ...REDIRECT.filter((b) => cap.includes(b))] : ctl };
  }
}
