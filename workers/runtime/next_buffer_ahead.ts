/**
 * Fault-ahead into the next buffer of a cyclic stream (a capture device's
 * "next frame address" register; ATS lets a device ask for translations
 * before it uses them): when a buffer is done, the first missing window of
 * the next one is asked for (DeviceTlb.prefetch), so the kernel maps it —
 * recycling BAR slots behind the stream, invalidating the pages just
 * written — while the device completes this frame and fetches its next
 * command, instead of on its fault path once that command has started.
 *
 * Asked for only once the buffer is written: the exporter's drop-behind
 * takes its slots from just behind the request, which is then the buffer
 * the device no longer needs, never one it is still writing.
 *
 * Only a hint: posted when a mailbox group is free for it, its reply is collected by
 * the next fault (VaSpace.faultAt -> DeviceTlb.fault), and an invalidation
 * of its range before then makes the reply unused (the DeviceTlb retry
 * test). It never waits.
 *
 * Threading: the device worker only.
 */
import { PAGE_SIZE } from '../../src/shm/constants.js';
import { FAULT_WINDOW } from '../../src/shm/tlb_layout.js';
import type { DeviceTlb } from './device_tlb.js';

/** Asks for the first missing window of [va, +len); false when nothing was posted (all present, or the mailbox busy). */
export function faultAheadInto(tlb: DeviceTlb, va: number, len: number, write: boolean): boolean {
  const end = Math.ceil((va + len) / PAGE_SIZE);
  let first = Math.floor(va / PAGE_SIZE);
  while (first < end && tlb.usable(first, write)) first++;
  return first < end && tlb.prefetch(first * PAGE_SIZE, Math.min(FAULT_WINDOW, end - first), write);
}
