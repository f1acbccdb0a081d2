/**
 * piscina task: checks one output frame bit-exact against the CPU
 * reference (pattern -> colourReference). Runs off the main thread so the
 * kernel keeps serving devices while frames are checked.
 *
 * The frame is read straight from the shared memory it landed in (system
 * RAM, or a device's memory in the [B] variant; no copy through the task
 * message); `pieces` are the contiguous runs of the output buffer.
 */
import type { ColourParams } from '../../devices/camera_chain_abi.js';
import { colourReference } from '../reference/colour.js';
import { patternReference } from '../reference/frame_pattern.js';

export interface VerifyTask {
  /** System RAM or the final device's memory. */
  readonly mem: SharedArrayBuffer;
  readonly pieces: readonly { readonly offset: number; readonly len: number }[];
  readonly seed: number;
  readonly frame: number;
  readonly width: number;
  readonly height: number;
  readonly params: ColourParams;
}

export interface VerifyResult {
  readonly frame: number;
  /** First differing byte offset within the frame, or -1. */
  readonly mismatchAt: number;
  readonly expected: number;
  readonly got: number;
  readonly mismatches: number;
}

export default function verifyFrame(t: VerifyTask): VerifyResult {
  const pixels = t.width * t.height;
  const input = new Uint32Array(pixels);
  patternReference(input, t.seed, t.frame, t.width);
  const ref = new Uint8Array(pixels * 4);
  colourReference(new Uint8Array(input.buffer), ref, t.params);
  const ram = new Uint8Array(t.mem);
  let base = 0;
  let first = -1;
  let count = 0;
  for (const p of t.pieces) {
    const got = Buffer.from(ram.buffer, p.offset, p.len);
    const want = Buffer.from(ref.buffer, base, p.len);
    if (!got.equals(want)) {
      for (let i = 0; i < p.len; i++) {
        if (got[i] !== want[i]) {
          if (first < 0) first = base + i;
          count++;
        }
      }
    }
    base += p.len;
  }
  const got = first >= 0 ? locate(ram, t.pieces, first) : 0;
  return { frame: t.frame, mismatchAt: first, expected: first >= 0 ? ref[first] : 0, got, mismatches: count };
}

function locate(ram: Uint8Array, pieces: VerifyTask['pieces'], at: number): number {
  for (const p of pieces) {
    if (at < p.len) return ram[p.offset + at];
    at -= p.len;
  }
  return -1;
}
