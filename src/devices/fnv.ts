/**
 * FNV-1a, 32 bits: the definition of the checksum the devices compute (the
 * NIC's sink, the accelerator kernel's per-iteration checksum) and the
 * workloads' references recompute. Constants only: the device side runs
 * src/devices/models/checksum.ts, the references src/workloads/reference/,
 * two implementations of one definition.
 *
 *   h = FNV_OFFSET; for each unit u: h = (h ^ u) * FNV_PRIME  (mod 2^32)
 */
export const FNV_OFFSET = 0x811c9dc5;
export const FNV_PRIME = 0x01000193;
