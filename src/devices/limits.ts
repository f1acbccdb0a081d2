/**
 * What this machine can hold, checked before anything starts: a scenario
 * that asks for more memory or more device workers than the host has is
 * refused with the numbers (asked, available), not left to crash Node.
 */
import os from 'node:os';
import { LimitError } from '../errors.js';

const MiB = 1024 * 1024;
/** Memory a device worker costs beyond its SABs (isolate, heap, stacks), measured ~10 MiB; rounded up. */
export const WORKER_OVERHEAD_BYTES = 24 * MiB;
/** Hard cap on device workers: each is a V8 isolate, and 2 cores share them all. */
export const MAX_DEVICES = 64;
/** Largest single memory (RAM or device memory): typed-array views index with 32-bit lengths. */
export const MAX_MEMORY_BYTES = 4096 * MiB;
/** Memory left to the OS, the main thread and the test runner. */
const RESERVE_BYTES = 1024 * MiB;

export interface MachineAsk {
  readonly ramBytes: number;
  readonly devices: readonly { name: string; memBytes: number }[];
}

export function availableBytes(): number {
  return Math.max(0, Math.min(os.totalmem() * 0.75, os.freemem()) - RESERVE_BYTES);
}

export function checkLimits(ask: MachineAsk, available = availableBytes()): void {
  if (ask.devices.length > MAX_DEVICES) throw new LimitError('device workers', ask.devices.length, MAX_DEVICES, 'devices');
  if (ask.ramBytes > MAX_MEMORY_BYTES) throw new LimitError('system RAM (one SharedArrayBuffer)', ask.ramBytes / MiB, MAX_MEMORY_BYTES / MiB, 'MiB');
  for (const d of ask.devices) {
    if (d.memBytes > MAX_MEMORY_BYTES) throw new LimitError(`device memory of ${d.name}`, d.memBytes / MiB, MAX_MEMORY_BYTES / MiB, 'MiB');
  }
  const total = ask.ramBytes + ask.devices.reduce((s, d) => s + d.memBytes + WORKER_OVERHEAD_BYTES, 0);
  if (total > available) throw new LimitError('host memory (RAM + device memory + worker overhead)', Math.ceil(total / MiB), Math.floor(available / MiB), 'MiB');
}
