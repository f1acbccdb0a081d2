/*
 * Vendor and device ids from lspci's text when the capture lacks "-nn".
 * lspci prints an id it has no name for as "<Vendor> Device 14a4"
 * (pciutils lib/names.c: "Device %04x" for an unknown device of a known
 * vendor) and "Device 1022:14a4" when the vendor is unknown too, so the
 * device id is in the text; the vendor id comes from this table of the
 * vendor names pci.ids gives the vendors whose devices a P2P question is
 * about (root complexes, switches, GPUs, NICs, NVMe).
 */

/** pci.ids vendor names, as lspci prints them. */
const VENDORS: readonly { name: string; id: string }[] = [
  { name: 'Advanced Micro Devices, Inc. [AMD]', id: '1022' },
  { name: 'Advanced Micro Devices, Inc. [AMD/ATI]', id: '1002' },
  { name: 'Intel Corporation', id: '8086' },
  { name: 'NVIDIA Corporation', id: '10de' },
  { name: 'Mellanox Technologies', id: '15b3' },
  { name: 'Broadcom / LSI', id: '1000' },
  { name: 'Broadcom Inc. and subsidiaries', id: '14e4' },
  { name: 'PLX Technology, Inc.', id: '10b5' },
  { name: 'Microsemi / PMC / IDT', id: '11f8' },
  { name: 'Samsung Electronics Co Ltd', id: '144d' },
  { name: 'Ampere Computing, LLC', id: '1def' },
  { name: 'Huawei Technologies Co., Ltd.', id: '19e5' },
  { name: 'ASPEED Technology, Inc.', id: '1a03' },
];

/**
 * The vendor:device id an unnamed-device text carries, or undefined:
 * "Advanced Micro Devices, Inc. [AMD] Device 14a4" -> "1022:14a4",
 * "Device 1022:14a4" -> "1022:14a4".
 */
export function idFromUnnamedDevice(text: string): string | undefined {
  const both = /(?:^|\s)Device ([0-9a-fA-F]{4}):([0-9a-fA-F]{4})(?:\s*\(rev [0-9a-fA-F]+\))?\s*$/.exec(text);
  if (both) return `${both[1]}:${both[2]}`.toLowerCase();
  const dev = /^(.*\S)\s+Device ([0-9a-fA-F]{4})(?:\s*\(rev [0-9a-fA-F]+\))?\s*$/.exec(text);
  if (!dev) return undefined;
  const vendor = VENDORS.find((v) => v.name === dev[1]);
  return vendor ? `${vendor.id}:${dev[2].toLowerCase()}` : undefined;
}
