/**
 * Shared-memory ABI of `peervma stress` (src/stress/*, workers/x_stress.ts):
 * the job table main writes and every streaming device reads, each
 * device's counters and violation ring, and the self-describing payload a
 * device writes into every page.
 *
 *   main (StressRig)                        device (x-stress worker)
 *   ----------------                        ------------------------
 *   buffer b: store va, npages, writer,     poll(): b = next buffer;
 *     then Atomics.add(epoch)                 e = Atomics.load(epoch), read va..
 *   (munmap + remap: valid := 0, new va,      a changed epoch resets the
 *    epoch++, valid := 1)                     device's shadow of b
 *   Atomics.store(step, s)                  violations carry the step seen
 *   [Required: a device never judges a page by the shadow of another epoch]
 *
 * Payload, at the start of every page a device writes (words, little
 * endian), the rest of the page a pattern of (seq, page): a stale, torn or
 * foreign page fails the checksum or the owner/seq test.
 */
import { PAGE_SIZE } from './constants.js';
import { defineLayout } from './layout.js';

/** Buffers a stress run may have at once (job table rows). */
export const STRESS_MAX_BUFS = 32;
/** Violation records kept per device (a ring; the counts are exact). */
export const STRESS_VIOLATION_RECORDS = 64;
/** Payload violation kinds (StressViolationKind runs 1..this): one exact counter each per device. */
export const STRESS_VIOLATION_KINDS = 3;

export const StressHdr = defineLayout({
  run: { writer: 'main', doc: '1 while devices stream; 0 makes them idle' },
  nbufs: { writer: 'main', doc: 'job table rows in use' },
  step: { writer: 'main', doc: 'schedule step the kernel is at (stamped on every violation)' },
});

export const StressBuf = defineLayout({
  va: { words: 2, writer: 'main', doc: 'process VA of the buffer (u64)' },
  npages: { writer: 'main', doc: 'pages in the buffer' },
  writer: { writer: 'main', doc: 'device index of the only device that writes it' },
  epoch: { writer: 'main', doc: 'bumped when the buffer is replaced (munmap + mmap); odd while it is being replaced' },
  kind: { writer: 'main', doc: 'StressBufKind: anonymous (HMM) or device-special (P2P through a BAR)' },
});

export const enum StressBufKind {
  Anon = 0,
  Bar = 1,
}

/** One payload violation a device saw. */
export const StressViolation = defineLayout({
  kind: { writer: 'worker', doc: 'StressViolationKind' },
  buf: { writer: 'worker', doc: 'job table row' },
  page: { writer: 'worker', doc: 'page within the buffer' },
  step: { writer: 'worker', doc: 'schedule step (StressHdr.step) when seen' },
  seen: { writer: 'worker', doc: 'seq found in the page (-1: no payload)' },
  expected: { writer: 'worker', doc: 'last seq the device wrote there (-1: none)' },
});

export const StressDevStat = defineLayout({
  inject: { writer: 'main', doc: 'StressInject: fault the device commits at its next pass' },
  pagesRead: { writer: 'worker', doc: 'pages read and judged' },
  pagesWritten: { writer: 'worker', doc: 'pages written with a payload' },
  ioErrors: { writer: 'worker', doc: 'transfers that failed (EFAULT after munmap, EPERM after mprotect, IOMMU faults, ...)' },
  violations: { writer: 'worker', doc: 'payload violations found (exact count; stored last, it publishes the record)' },
  byKind: { words: STRESS_VIOLATION_KINDS, writer: 'worker', doc: 'payload violations per StressViolationKind (word kind - 1; exact, unlike the ring, which later records overwrite)' },
  records: { words: STRESS_VIOLATION_RECORDS * StressViolation.kFieldCount, writer: 'worker', doc: 'ring of StressViolation records' },
});

export const enum StressViolationKind {
  PoisonRead = 1,
  StaleData = 2,
  CorruptData = 3,
}

export const STRESS_VIOLATION_NAMES: Readonly<Record<number, string>> = {
  [StressViolationKind.PoisonRead]: 'poison-read',
  [StressViolationKind.StaleData]: 'stale-data',
  [StressViolationKind.CorruptData]: 'corrupt-data',
};

export const enum StressInject {
  None = 0,
  Throw = 1,
  Exit = 2,
  Hang = 3,
}

/** Payload header words at the start of a written page. */
export const Payload = defineLayout({
  magic: { writer: 'worker', doc: 'PAYLOAD_MAGIC' },
  owner: { writer: 'worker', doc: 'device index of the writer' },
  buf: { writer: 'worker', doc: 'job table row' },
  page: { writer: 'worker', doc: 'page within the buffer' },
  epoch: { writer: 'worker', doc: 'buffer epoch when written' },
  seq: { writer: 'worker', doc: 'writer sequence number (per device, increasing)' },
  checksum: { writer: 'worker', doc: 'payloadChecksum of the words above and the body' },
});

export const PAYLOAD_MAGIC = 0x53545231; // "STR1"
const BODY_WORDS = PAGE_SIZE / 4 - Payload.kFieldCount;

export function stressShmBytes(ndev: number): number {
  return StressHdr.kBytes + STRESS_MAX_BUFS * StressBuf.kBytes + ndev * StressDevStat.kBytes;
}

/** Word index of job table row `b`. */
export function stressBufWord(b: number): number {
  return StressHdr.kFieldCount + b * StressBuf.kFieldCount;
}

/** Word index of device `d`'s counters (d: its position among the stress devices). */
export function stressDevWord(d: number): number {
  return StressHdr.kFieldCount + STRESS_MAX_BUFS * StressBuf.kFieldCount + d * StressDevStat.kFieldCount;
}

/** Word index of violation record `n` (the count before it was written) in device `d`'s ring of records. */
export function stressRecordWord(d: number, n: number): number {
  return stressDevWord(d) + StressDevStat.records + (n % STRESS_VIOLATION_RECORDS) * StressViolation.kFieldCount;
}

/** Word index of device `d`'s counter of violations of `kind` (a StressViolationKind). */
export function stressKindWord(d: number, kind: number): number {
  return stressDevWord(d) + StressDevStat.byKind + kind - 1;
}

/** Writes the payload of (owner, buf, page, epoch, seq) into the page at word `w` of `view`. */
export function writePayload(view: Int32Array, w: number, owner: number, buf: number, page: number, epoch: number, seq: number): void {
  view[w + Payload.magic] = PAYLOAD_MAGIC;
  view[w + Payload.owner] = owner;
  view[w + Payload.buf] = buf;
  view[w + Payload.page] = page;
  view[w + Payload.epoch] = epoch;
  view[w + Payload.seq] = seq;
  const b0 = w + Payload.kFieldCount;
  const base = Math.imul(seq, 0x9e3779b1) ^ Math.imul(page + 1, 0x85ebca6b);
  for (let i = 0; i < BODY_WORDS; i++) view[b0 + i] = base + i;
  view[w + Payload.checksum] = payloadChecksum(view, w);
}

/** FNV-style checksum over the header (checksum word excluded) and the body. */
export function payloadChecksum(view: Int32Array, w: number): number {
  let h = 0x811c9dc5 | 0;
  for (let i = 0; i < Payload.checksum; i++) h = Math.imul(h ^ view[w + i], 16777619);
  const b0 = w + Payload.kFieldCount;
  for (let i = 0; i < BODY_WORDS; i += 1) h = Math.imul(h ^ view[b0 + i], 16777619);
  return h;
}

export type PageState = { readonly kind: 'zero' } | { readonly kind: 'poison' } | { readonly kind: 'corrupt' } | { readonly kind: 'payload'; readonly owner: number; readonly buf: number; readonly page: number; readonly epoch: number; readonly seq: number };

/** What a page holds: all zero, all poison, a valid payload, or anything else (torn, foreign, garbage). */
export function judgePage(view: Int32Array, w: number, poisonWord: number): PageState {
  const n = PAGE_SIZE / 4;
  const first = view[w];
  if (first === 0 || first === poisonWord) {
    let same = true;
    for (let i = 1; i < n && same; i++) same = view[w + i] === first;
    if (same) return { kind: first === 0 ? 'zero' : 'poison' };
  }
  if (first !== PAYLOAD_MAGIC || payloadChecksum(view, w) !== view[w + Payload.checksum]) return { kind: 'corrupt' };
  return { kind: 'payload', owner: view[w + Payload.owner], buf: view[w + Payload.buf], page: view[w + Payload.page], epoch: view[w + Payload.epoch], seq: view[w + Payload.seq] };
}
