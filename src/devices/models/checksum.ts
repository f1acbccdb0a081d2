/**
 * The checksum every data check of the workloads uses: FNV-1a, 32 bits,
 * over bytes, continuable across chunks (pass the previous value back in).
 * Devices (the NIC's sink) and the checker (CPU reference) run this same
 * function over the same bytes; what it guards is the data path between
 * them, not the function.
 */
export const FNV_OFFSET = 0x811c9dc5;

export function fnv1a(bytes: Uint8Array, h = FNV_OFFSET): number {
  for (let i = 0; i < bytes.length; i++) h = Math.imul(h ^ bytes[i], 0x01000193);
  return h >>> 0;
}
