/*
 * PCIe Access Control Services (ACS): the capability/control bits of a port
 * and the kernel's questions about them.
 *
 * Mirrors (Linux):
 *   drivers/pci/pci.c     pci_acs_flags_enabled(), pci_acs_enabled(),
 *                         pci_acs_path_enabled(), pci_std_enable_acs(),
 *                         pci_enable_acs(), pci_disable_acs_redir()
 *   drivers/pci/p2pdma.c  pci_bridge_has_acs_redir()
 *   drivers/iommu/iommu.c REQ_ACS_FLAGS
 *
 * Invariants:
 *   - `ctl` only ever holds bits that are in `cap` (hardware ignores writes
 *     to bits it does not implement), except when imported from a real
 *     machine, where we keep what lspci printed.
 *   - A node without an ACS capability has `cap === null`; that is not the
 *     same as a capability with no bits (pci_acs_flags_enabled() treats
 *     missing *capability bits* as "hard-wired enabled", but a missing
 *     *capability* as "not enabled").
 *   - Redirect = RR | CR | EC in ctl (pci_bridge_has_acs_redir()).
 */

/** One ACS bit: kernel name, lspci -vvv name, config-space value (PCI_ACS_*). */
export interface AcsBitInfo {
  readonly bit: AcsBit;
  readonly mask: number;
  readonly lspci: string;
  readonly meaning: string;
}

export type AcsBit = 'SV' | 'TB' | 'RR' | 'CR' | 'UF' | 'EC' | 'DT';

/** PCI_ACS_* from include/uapi/linux/pci_regs.h. */
export const PCI_ACS_SV = 0x0001;
export const PCI_ACS_TB = 0x0002;
export const PCI_ACS_RR = 0x0004;
export const PCI_ACS_CR = 0x0008;
export const PCI_ACS_UF = 0x0010;
export const PCI_ACS_EC = 0x0020;
export const PCI_ACS_DT = 0x0040;

/** The PCI_ACS_* bits in register order, with their lspci -vvv names. */
export const ACS_BITS: readonly AcsBitInfo[] = [
  { bit: 'SV', mask: PCI_ACS_SV, lspci: 'SrcValid', meaning: 'Source Validation' },
  { bit: 'TB', mask: PCI_ACS_TB, lspci: 'TransBlk', meaning: 'Translation Blocking' },
  { bit: 'RR', mask: PCI_ACS_RR, lspci: 'ReqRedir', meaning: 'P2P Request Redirect' },
  { bit: 'CR', mask: PCI_ACS_CR, lspci: 'CmpltRedir', meaning: 'P2P Completion Redirect' },
  { bit: 'UF', mask: PCI_ACS_UF, lspci: 'UpstreamFwd', meaning: 'Upstream Forwarding' },
  { bit: 'EC', mask: PCI_ACS_EC, lspci: 'EgressCtrl', meaning: 'P2P Egress Control' },
  { bit: 'DT', mask: PCI_ACS_DT, lspci: 'DirectTrans', meaning: 'Direct Translated P2P' },
];

export const ACS_BIT_NAMES = ACS_BITS.map((b) => b.bit) as readonly AcsBit[];

/** Bits whose control setting sends peer TLPs upstream (pci_bridge_has_acs_redir). */
export const ACS_REDIR_MASK = PCI_ACS_RR | PCI_ACS_CR | PCI_ACS_EC;
/** drivers/iommu/iommu.c: isolation needed for a device to get its own IOMMU group. */
export const REQ_ACS_FLAGS = PCI_ACS_SV | PCI_ACS_RR | PCI_ACS_CR | PCI_ACS_UF;

/** ACS state of one PCI function. `cap === null`: no ACS extended capability. */
export interface AcsState {
  cap: number | null;
  /** Control register as firmware / the scenario left it (before the kernel touched it). */
  fwCtl: number;
  /** Control register after pci_enable_acs() / pci_disable_acs_redir(). */
  ctl: number;
  /** Human-readable notes of who changed ctl and why (for --explain). */
  changes: string[];
}

export function acsMask(bits: readonly AcsBit[]): number {
  let m = 0;
  for (const b of bits) {
    const info = ACS_BITS.find((x) => x.bit === b);
    if (!info) throw new Error(`unknown ACS bit ${String(b)}`);
    m |= info.mask;
  }
  return m;
}

export function acsBitsOf(mask: number): AcsBit[] {
  return ACS_BITS.filter((b) => (mask & b.mask) !== 0).map((b) => b.bit);
}

/** "RR CR" style, or "-" when empty. */
export function formatAcs(mask: number): string {
  const bits = acsBitsOf(mask);
  return bits.length ? bits.join(' ') : '-';
}

/**
 * Parse the flag list of an lspci "ACSCap:" / "ACSCtl:" line:
 * "SrcValid+ TransBlk- ReqRedir+ CmpltRedir+ UpstreamFwd+ EgressCtrl- DirectTrans-".
 * Returns null if a word is not an ACS flag.
 */
export function parseAcsLspci(text: string): number | null {
  let mask = 0;
  for (const word of text.trim().split(/\s+/)) {
    if (word === '') continue;
    const m = /^([A-Za-z]+)([+-])$/.exec(word);
    if (!m) return null;
    const info = ACS_BITS.find((b) => b.lspci === m[1]);
    if (!info) return null;
    if (m[2] === '+') mask |= info.mask;
  }
  return mask;
}

export function newAcsState(cap: number | null, ctl: number): AcsState {
  const c = cap === null ? 0 : ctl & cap;
  return { cap, fwCtl: c, ctl: c, changes: [] };
}

/**
 * pci_std_enable_acs(): what the kernel does for every ACS-capable function
 * when an IOMMU driver has called pci_request_acs(). SV, RR, CR, UF are set
 * wherever the capability has them; TB only for external-facing/untrusted
 * ports (not modelled: never set here). EC and DT are left alone.
 */
export function pciStdEnableAcs(acs: AcsState, why: string): void {
  if (acs.cap === null) return;
  const add = acs.cap & (PCI_ACS_SV | PCI_ACS_RR | PCI_ACS_CR | PCI_ACS_UF);
  const newly = add & ~acs.ctl;
  acs.ctl |= add;
  if (newly) acs.changes.push(`pci_enable_acs() set ${formatAcs(newly)} (${why})`);
}

/**
 * pci_disable_acs_redir(): the `pci=disable_acs_redir=<list>` kernel
 * parameter clears RR, CR and EC on the listed functions (after
 * pci_enable_acs() ran). Returns false (and the kernel warns) when the
 * function has no ACS capability.
 */
export function pciDisableAcsRedir(acs: AcsState): boolean {
  if (acs.cap === null) return false;
  const cleared = acs.ctl & ACS_REDIR_MASK;
  acs.ctl &= ~ACS_REDIR_MASK;
  if (cleared) acs.changes.push(`pci=disable_acs_redir cleared ${formatAcs(cleared)}`);
  return true;
}

/** pci_bridge_has_acs_redir() as a mask: the redirect bits (RR, CR, EC) set in the control register, for messages. */
export function acsRedirBits(acs: AcsState | null): number {
  return acs && acs.cap !== null ? acs.ctl & ACS_REDIR_MASK : 0;
}

/**
 * pci_acs_flags_enabled(): "Except for egress control, capabilities are
 * either required or only required if controllable. Features missing from
 * the capability field can therefore be assumed as hard-wired enabled."
 */
export function pciAcsFlagsEnabled(acs: AcsState | null, flags: number): boolean {
  if (!acs || acs.cap === null) return false;
  const want = flags & (acs.cap | PCI_ACS_EC);
  return (acs.ctl & want) === want;
}
