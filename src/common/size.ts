/**
 * Byte sizes in scenario files: a number of bytes, or a string with a
 * binary unit ("64 MiB", "256KiB", "4096", "1 TiB"). A size too large to
 * hold is still parsed exactly (up to 2^53 bytes), so the limit check that
 * follows can name the real figure.
 */
import { z } from 'zod';

const UNITS: Readonly<Record<string, number>> = { '': 1, B: 1, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3, TiB: 1024 ** 4 };
const SIZE_RE = /^\s*(\d+)\s*(B|KiB|MiB|GiB|TiB)?\s*$/;

export const sizeSchema = z
  .union([z.number().int().nonnegative(), z.string().regex(SIZE_RE, 'expected a size such as 4096, "256 KiB", "64 MiB" or "1 GiB" (units B, KiB, MiB, GiB, TiB)')])
  .transform((v) => {
    if (typeof v === 'number') return v;
    const m = SIZE_RE.exec(v)!;
    return Number(m[1]) * UNITS[m[2] ?? ''];
  });

export function formatBytes(n: number): string {
  if (n >= 1024 ** 4) return `${(n / 1024 ** 4).toFixed(2)} TiB`;
  if (n >= 1024 ** 3) return `${(n / 1024 ** 3).toFixed(2)} GiB`;
  if (n >= 1024 ** 2) return `${(n / 1024 ** 2).toFixed(1)} MiB`;
  if (n >= 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${n} B`;
}
