/**
 * The NIC sink's checksum, as the device computes it: FNV-1a, 32 bits, over
 * bytes, continuable across chunks (pass the previous value back in).
 * Definition: src/devices/fnv.ts. The workloads check it with their own
 * implementation (src/workloads/reference/checksum.ts), so what the check
 * guards is the data path between them, and a slip in either shows.
 */
import { FNV_OFFSET, FNV_PRIME } from '../fnv.js';

export function fnv1a(bytes: Uint8Array, h = FNV_OFFSET): number {
  for (let i = 0; i < bytes.length; i++) h = Math.imul(h ^ bytes[i], FNV_PRIME);
  return h >>> 0;
}
