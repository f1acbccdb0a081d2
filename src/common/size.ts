/**
 * Byte sizes in scenario files: a number of bytes, or a string with a
 * binary unit ("64 MiB", "256KiB", "4096").
 */
import { z } from 'zod';

const UNITS: Readonly<Record<string, number>> = { '': 1, B: 1, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3 };

export const sizeSchema = z
  .union([z.number().int().nonnegative(), z.string().regex(/^\s*\d+\s*(B|KiB|MiB|GiB)?\s*$/, 'expected a size such as 4096, "256 KiB" or "64 MiB"')])
  .transform((v) => {
    if (typeof v === 'number') return v;
    const m = /^\s*(\d+)\s*(B|KiB|MiB|GiB)?\s*$/.exec(v)!;
    return Number(m[1]) * UNITS[m[2] ?? ''];
  });

export function formatBytes(n: number): string {
  if (n >= 1024 ** 3) return `${(n / 1024 ** 3).toFixed(2)} GiB`;
  if (n >= 1024 ** 2) return `${(n / 1024 ** 2).toFixed(1)} MiB`;
  if (n >= 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${n} B`;
}
