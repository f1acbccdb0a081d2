/**
 * Shared-memory layouts, declared once as tables of fields.
 *
 * Mirrors the way QEMU names every register offset (XIO3130_*_OFFSET) and the
 * way piscina names its SAB slots (kRequestCountField): no offset into a
 * SharedArrayBuffer appears as a bare literal anywhere else in peervma. Both
 * the main thread ("kernel") and the device workers ("hardware") import the
 * same layout object, so the two sides cannot disagree about a word.
 *
 * Invariants:
 * - a layout is a list of 32-bit words; a field of `words > 1` is an array;
 * - offsets are word indexes, assigned in declaration order, never reused;
 * - `writer` documents which side stores the field; readers use Atomics.load
 *   for fields the other side writes.
 */

export type Writer = 'main' | 'worker' | 'both' | 'peer';

export interface FieldSpec {
  readonly words?: number;
  readonly writer: Writer;
  /** What the word means, and the protocol it takes part in. */
  readonly doc: string;
}

export type Layout<F extends Record<string, FieldSpec>> = {
  readonly [K in keyof F]: number;
} & { readonly kFieldCount: number; readonly kBytes: number; readonly fields: F };

/** Assigns word offsets to the fields, in declaration order. */
export function defineLayout<const F extends Record<string, FieldSpec>>(fields: F): Layout<F> {
  const out: Record<string, unknown> = { fields };
  let off = 0;
  for (const [name, spec] of Object.entries(fields)) {
    if (name === 'kFieldCount' || name === 'kBytes' || name === 'fields') {
      throw new Error(`layout: field name '${name}' is reserved`);
    }
    out[name] = off;
    off += spec.words ?? 1;
  }
  out.kFieldCount = off;
  out.kBytes = off * 4;
  return Object.freeze(out) as Layout<F>;
}

/** Allocates an Int32Array over a fresh SAB sized for the layout. */
export function allocLayout(layout: { kBytes: number }): Int32Array {
  return new Int32Array(new SharedArrayBuffer(layout.kBytes));
}

/** Bus addresses and byte counts are < 2^53; in SAB they are stored as two u32 words. */
export function storeU64(view: Int32Array, word: number, value: number): void {
  view[word] = value % 0x1_0000_0000 | 0;
  view[word + 1] = Math.floor(value / 0x1_0000_0000);
}

export function loadU64(view: Int32Array, word: number): number {
  return (view[word] >>> 0) + view[word + 1] * 0x1_0000_0000;
}
