/**
 * `va-stream`: a device streams process memory by VA with no workload
 * compute — the data path alone (process VA -> device TLB -> DMA engine
 * -> bus decode -> copy), which `peervma bench` times against a raw SAB
 * memcpy of the same bytes (bench/dma_rig.ts).
 *
 * One call runs whole passes over [va, +len) in commands of `cmdBytes`
 * (each command one VaSpace read or write, as a queue command would be),
 * local memory at [localOff, +len) (or folded modulo `localSpan`), until
 * `passes` passes are done, or, with `untilMs`, until that much time has
 * passed (whole passes, at least one). With `startLine`, the clock starts
 * when main releases the line shared with the other streams timed
 * together (src/shm/start_line.ts), not when this command arrives. Invalidations are served between
 * DMA chunks as always, so the kernel may revoke mid-stream.
 *
 * Returns the bytes moved and the time inside the loop (worker clock,
 * plus absolute start and end, and the thread's on-CPU time in it:
 * workers/runtime/thread_cpu.ts):
 * no comlink round trip is in the figure.
 */
import type { DeviceCmd, DeviceReply } from '../../src/devices/protocol.js';
import { threadCpuMs } from './thread_cpu.js';
import type { VaSpace } from './va_space.js';

export function vaStream(va: VaSpace, cmd: DeviceCmd<'va-stream'>): DeviceReply<'va-stream'> {
  const base = cmd.va;
  const len = cmd.len;
  const step = cmd.cmdBytes;
  const localOff = cmd.localOff ?? 0;
  const localSpan = cmd.localSpan ?? len;
  const write = cmd.write === true;
  const passes = cmd.passes ?? 1;
  const untilMs = cmd.untilMs ?? 0;
  if (!(len > 0 && step > 0 && localSpan >= step && localSpan % step === 0)) return { errno: 'EINVAL', message: `va-stream: len ${len}, cmdBytes ${step}, localSpan ${localSpan} (localSpan must be a multiple of cmdBytes)` };
  if (cmd.startLine) {
    const late = va.waitStart(new Int32Array(cmd.startLine));
    if (late !== null) return { errno: 'ETIMEDOUT', message: late };
  }
  const r0 = va.counters;
  const c0 = threadCpuMs();
  const t0 = performance.now();
  let bytes = 0;
  for (let p = 0; ; p++) {
    for (let off = 0; off < len; off += step) {
      const n = Math.min(step, len - off);
      const local = localOff + (off % localSpan);
      const err = write ? va.write(base + off, local, n, base + len) : va.read(base + off, local, n, base + len);
      if (err !== null) return { errno: 'EIO', message: err };
      bytes += n;
    }
    if (untilMs > 0 ? performance.now() - t0 >= untilMs : p + 1 >= passes) break;
  }
  const ms = performance.now() - t0;
  const cpuMs = threadCpuMs() - c0;
  const r1 = va.counters;
  // t0/t1 absolute (ms since the epoch), so streams of several workers can be aligned.
  const o = performance.timeOrigin;
  return { errno: 0, bytes, ms, cpuMs, t0: o + t0, t1: o + t0 + ms, faults: r1.faults - r0.faults, pagesFaulted: r1.pagesFaulted - r0.pagesFaulted, refaults: r1.refaults - r0.refaults, retries: r1.retries - r0.retries, prefetchHits: r1.prefetchHits - r0.prefetchHits };
}
