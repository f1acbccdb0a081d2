/**
 * What this machine can hold, checked before anything starts: a scenario
 * that asks for more memory or more device workers than the host has is
 * refused with the numbers (asked, available), not left to crash Node.
 *
 * The device limit is not a constant: it is the memory left after the
 * scenario's RAM and device memories, divided by what one device worker
 * costs (WORKER_BYTES). MAX_DEVICE_WORKERS only caps the list a scenario
 * file may hold, so the schema never walks a runaway list.
 */
import os from 'node:os';
import { LimitError } from '../errors.js';

const MiB = 1024 * 1024;
/**
 * Memory one device worker costs beyond its SABs (isolate, heap, stacks).
 * Measured as the host process's RSS delta per idle device worker over 64
 * and 256 workers (`peervma bench --only boot`, row boot.256.rss): ~9 MiB,
 * of which ~8.5 MiB is Node's own floor for any live worker_thread; 12 MiB
 * leaves a worker room for its heap to grow while it runs.
 */
export const WORKER_BYTES = 12 * MiB;
/** Longest device list a scenario may hold (the memory limit is checked later, against this host). */
export const MAX_DEVICE_WORKERS = 4096;
/** Largest single memory (RAM or device memory): typed-array views index with 32-bit lengths. */
export const MAX_MEMORY_BYTES = 4096 * MiB;
/** Memory left to the OS, the main thread and the test runner. */
const RESERVE_BYTES = 1024 * MiB;

export interface MachineAsk {
  readonly ramBytes: number;
  readonly devices: readonly { name: string; memBytes: number }[];
}

function availableBytes(): number {
  return Math.max(0, Math.min(os.totalmem() * 0.75, os.freemem()) - RESERVE_BYTES);
}

/** Device workers that fit in `available` bytes beside `otherBytes` of RAM and device memory. */
export function deviceLimit(otherBytes = 0, available = availableBytes()): number {
  return Math.min(MAX_DEVICE_WORKERS, Math.max(0, Math.floor((available - otherBytes) / WORKER_BYTES)));
}

export function checkLimits(ask: MachineAsk, available = availableBytes()): void {
  if (ask.ramBytes > MAX_MEMORY_BYTES) throw new LimitError('system RAM (one SharedArrayBuffer)', ask.ramBytes / MiB, MAX_MEMORY_BYTES / MiB, 'MiB');
  for (const d of ask.devices) {
    if (d.memBytes > MAX_MEMORY_BYTES) throw new LimitError(`device memory of ${d.name}`, d.memBytes / MiB, MAX_MEMORY_BYTES / MiB, 'MiB');
  }
  const memories = ask.ramBytes + ask.devices.reduce((s, d) => s + d.memBytes, 0);
  const limit = deviceLimit(memories, available);
  if (ask.devices.length > limit) throw new LimitError(`device workers (${WORKER_BYTES / MiB} MiB each, in ${Math.floor(Math.max(0, available - memories) / MiB)} MiB left after RAM and device memory)`, ask.devices.length, limit, 'devices');
  const total = memories + ask.devices.length * WORKER_BYTES;
  if (total > available) throw new LimitError('host memory (RAM + device memory + worker overhead)', Math.ceil(total / MiB), Math.floor(available / MiB), 'MiB');
}
