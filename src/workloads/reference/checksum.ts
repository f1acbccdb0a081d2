/**
 * The workloads' own checksum (definition: src/devices/fnv.ts, FNV-1a over
 * 32-bit little-endian words in four lanes), written apart from the
 * device's (src/devices/models/checksum.ts): a check must not share code
 * with what it checks. This one reads each word with a DataView (explicit
 * little-endian, any alignment), runs each lane in a strided pass of its
 * own (the device interleaves the four in one pass), and pads a ragged end
 * byte by byte. Whole buffers only; a
 * reference never needs to continue across chunks.
 */
import { FNV_LANES, FNV_OFFSET, FNV_PRIME } from '../../devices/fnv.js';

/** Word i of `bytes` (little-endian, zero-padded past the end), as an int32. */
function wordAt(bytes: Uint8Array, view: DataView, i: number): number {
  if (4 * i + 4 <= bytes.length) return view.getInt32(4 * i, true);
  let w = 0;
  for (let k = 4 * i; k < bytes.length; k++) w |= bytes[k] << (8 * (k - 4 * i));
  return w;
}

/** The definition over `bytes`, unsigned: each lane in a strided pass of its own, then the fold. */
function lanesChecksum(bytes: Uint8Array): number {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const words = Math.ceil(bytes.length / 4);
  let h = FNV_OFFSET;
  for (let j = 0; j < FNV_LANES; j++) {
    let lane = FNV_OFFSET | 0;
    for (let i = j; i < words; i += FNV_LANES) lane = Math.imul(lane ^ wordAt(bytes, view, i), FNV_PRIME);
    h = Math.imul(h ^ lane, FNV_PRIME);
  }
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
