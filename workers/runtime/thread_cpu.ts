/**
 * On-CPU time of the calling thread (the kernel's per-task
 * sum_exec_runtime, first field of /proc/thread-self/schedstat, in ns).
 *
 * Why: on 2 shared cores a stream's wall time mixes the device's own work
 * with the time it waited for a core; va-stream reports both, so a bench
 * row can say whether a gap is the data path's code (on-CPU time per byte)
 * or scheduling (wall time the device spent off a core).
 *
 * Invariant: NaN where the file does not exist (not Linux) or cannot be
 * read; never throws. Costs a file read: call it per stream, not per command.
 */
import { readFileSync } from 'node:fs';

export function threadCpuMs(): number {
  try {
    return Number(readFileSync('/proc/thread-self/schedstat', 'latin1').split(' ', 1)[0]) / 1e6;
  } catch {
    return NaN;
  }
}
