/**
 * The workloads' own checksum (definition: src/devices/fnv.ts, FNV-1a over
 * 32-bit little-endian words in four lanes), written apart from the
 * device's (src/devices/models/checksum.ts): a check must not share code
 * with what it checks. This one reads each word with a DataView (explicit
 * little-endian, any alignment), keeps the lanes in an array indexed by
 * i % 4, and pads a ragged end byte by byte. Whole buffers only; a
 * reference never needs to continue across chunks.
 */
import { FNV_LANES, FNV_OFFSET, FNV_PRIME } from '../../devices/fnv.js';

/** The definition over `bytes`, unsigned. */
function lanesChecksum(bytes: Uint8Array): number {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const lanes = new Uint32Array(FNV_LANES).fill(FNV_OFFSET);
  const words = Math.ceil(bytes.length / 4);
  for (let i = 0; i < words; i++) {
    let w: number;
    if (4 * i + 4 <= bytes.length) w = view.getUint32(4 * i, true);
    else {
      w = 0;
      for (let k = 4 * i; k < bytes.length; k++) w += bytes[k] * 2 ** (8 * (k - 4 * i));
    }
    const j = i % FNV_LANES;
    lanes[j] = Math.imul(lanes[j] ^ w, FNV_PRIME);
  }
  let h = FNV_OFFSET;
  for (const l of lanes) h = Math.imul(h ^ l, FNV_PRIME) >>> 0;
  return Math.imul(h ^ bytes.length, FNV_PRIME) >>> 0;
}

/** The checksum of `bytes`, as a signed 32-bit value (the form the devices report: `h | 0`). */
export function fnv1aReference(bytes: Uint8Array): number {
  return lanesChecksum(bytes) | 0;
}

/** The checksum of a buffer of 32-bit words (the accelerator kernel's), unsigned. */
export function fnv1aWordsReference(words: Int32Array): number {
  return lanesChecksum(new Uint8Array(words.buffer, words.byteOffset, words.byteLength));
}
