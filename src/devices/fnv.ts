/**
 * The checksum the devices compute (the NIC's sink, the NIC's NVMe READ
 * log, the accelerator kernel's per-iteration checksum) and the workloads'
 * references recompute: FNV-1a, 32 bits, over 32-bit little-endian words
 * in FNV_LANES interleaved lanes. Constants only: the device side runs
 * src/devices/models/checksum.ts (and fuses it into
 * src/devices/models/accel_kernel.ts), the references
 * src/workloads/reference/checksum.ts, two implementations of one
 * definition.
 *
 *   words  w_0 .. w_{m-1}: the bytes as 32-bit little-endian words,
 *          m = ceil(len / 4), the last one zero-padded when len % 4 != 0
 *   lanes  l_j = FNV_OFFSET (j = 0 .. FNV_LANES - 1);
 *          for i = 0 .. m-1 in order: l_{i % 4} = (l_{i % 4} ^ w_i) * FNV_PRIME
 *   fold   h = FNV_OFFSET; for j = 0 .. 3: h = (h ^ l_j) * FNV_PRIME;
 *          h = (h ^ len) * FNV_PRIME            (all mod 2^32, len mod 2^32)
 *
 * Why words in lanes and not bytes: byte-wise FNV-1a is one multiply per
 * byte in a single dependency chain, 11x the cost of copying the byte
 * (issue 11); four independent word chains cost about one copy. The fold
 * is ordered (lane j enters before lane j + 1) and takes the length, so
 * swapping two words of different lanes, or a zero-padded tail against
 * real zero bytes, still changes the checksum.
 */
export const FNV_OFFSET = 0x811c9dc5;
export const FNV_PRIME = 0x01000193;
/** Interleaved lanes: word i goes to lane i % FNV_LANES. */
export const FNV_LANES = 4;
