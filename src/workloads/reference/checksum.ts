/**
 * The workloads' own FNV-1a (definition: src/devices/fnv.ts), written
 * apart from the device's (src/devices/models/checksum.ts): a check must
 * not share code with what it checks. Whole buffers only; a reference
 * never needs to continue across chunks.
 */
import { FNV_OFFSET, FNV_PRIME } from '../../devices/fnv.js';

/** FNV-1a of `bytes`, as a signed 32-bit value (the form the devices report: `h | 0`). */
export function fnv1aReference(bytes: Uint8Array): number {
  let h = FNV_OFFSET;
  for (const b of bytes) h = Math.imul(h ^ b, FNV_PRIME) >>> 0;
  return h | 0;
}

/** FNV-1a over 32-bit words (the accelerator kernel's checksum), unsigned. */
export function fnv1aWordsReference(words: Int32Array): number {
  let h = FNV_OFFSET;
  for (const w of words) h = Math.imul(h ^ w, FNV_PRIME) >>> 0;
  return h;
}
