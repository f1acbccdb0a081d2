/*
 * PCIe link rates: per-lane raw signalling rate and line-encoding overhead
 * for generations 1–6, and the usable bandwidth of a link of a given width.
 *
 * Mirrors (Linux): drivers/pci/pci.h PCIE_SPEED2MBS_ENC() / pcie_link_speed[]
 * and pcie_bandwidth_available() — "the available bandwidth of a link is
 * lanes × per-lane rate after encoding"; TLP/DLLP protocol overhead (headers,
 * ACK/NAK, flow-control credits) is *not* subtracted here, as in the kernel's
 * "available bandwidth" figure. Links are full duplex: each direction has
 * this bandwidth on its own.
 *
 * Invariants: gen ∈ 1..6, width ∈ {1,2,4,8,12,16,32}; rates are bytes/s.
 */

export type PcieGen = 1 | 2 | 3 | 4 | 5 | 6;
export const PCIE_WIDTHS = [1, 2, 4, 8, 12, 16, 32] as const;
export type PcieWidth = (typeof PCIE_WIDTHS)[number];

export interface PcieGenInfo {
  readonly gen: PcieGen;
  /** Raw signalling rate per lane, GT/s. */
  readonly gtps: number;
  /** Line encoding, as printed in specs. */
  readonly encoding: string;
  /** Payload bits per encoded bit. */
  readonly efficiency: number;
  /** lspci LnkCap/LnkSta "Speed" string. */
  readonly lspciSpeed: string;
}

/** One row per generation (PCIe base spec 1.0a … 6.0). */
const PCIE_GENS: readonly PcieGenInfo[] = [
  { gen: 1, gtps: 2.5, encoding: '8b/10b', efficiency: 8 / 10, lspciSpeed: '2.5GT/s' },
  { gen: 2, gtps: 5, encoding: '8b/10b', efficiency: 8 / 10, lspciSpeed: '5GT/s' },
  { gen: 3, gtps: 8, encoding: '128b/130b', efficiency: 128 / 130, lspciSpeed: '8GT/s' },
  { gen: 4, gtps: 16, encoding: '128b/130b', efficiency: 128 / 130, lspciSpeed: '16GT/s' },
  { gen: 5, gtps: 32, encoding: '128b/130b', efficiency: 128 / 130, lspciSpeed: '32GT/s' },
  // PAM4 + FLIT mode: 1b/1b, but each 256-byte FLIT carries 242 bytes of TLP/DLLP (FEC + CRC).
  { gen: 6, gtps: 64, encoding: 'PAM4 FLIT 242B/256B', efficiency: 242 / 256, lspciSpeed: '64GT/s' },
];

function genInfo(gen: number): PcieGenInfo {
  const g = PCIE_GENS.find((x) => x.gen === gen);
  if (!g) throw new RangeError(`PCIe generation ${gen} is not one of 1..6`);
  return g;
}

/** Usable bytes/s per lane, one direction. */
export function laneBytesPerSec(gen: number): number {
  const g = genInfo(gen);
  return (g.gtps * 1e9 * g.efficiency) / 8;
}

/** Usable bytes/s of a link, one direction. */
export function linkBytesPerSec(gen: number, width: number): number {
  return laneBytesPerSec(gen) * width;
}

/** "Gen3 x16 (15.75 GB/s)" */
export function formatLink(gen: number, width: number): string {
  return `Gen${gen} x${width} (${(linkBytesPerSec(gen, width) / 1e9).toFixed(2)} GB/s)`;
}

/** lspci "Speed 8GT/s" → 3; undefined when unknown. */
export function genFromLspciSpeed(speed: string): PcieGen | undefined {
  const s = speed.replace(/\s/g, '');
  return PCIE_GENS.find((g) => g.lspciSpeed === s)?.gen;
}
