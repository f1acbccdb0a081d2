/**
 * Command ABI of the `accelerator` device kind (workers/accelerator.ts).
 * Constants and types only (comlink's protocol.ts style): what a driver
 * puts in a host-queue submission (src/drivers/host_queue.ts, qid 0) and
 * what comes back in the completion.
 *
 * The accelerator is a compute device with local memory ("VRAM"). It owns
 * no part of that memory itself: its driver allocates every buffer and
 * record from the device's PageAllocator (Machine.device(..).mem), exports
 * some of it (BarExporter) or lends it to HMM (DevMem), and names local
 * memory in commands by byte offset.
 *
 * ACC_OP_COMPUTE   the iterative integer kernel (src/devices/models/accel_kernel.ts)
 *                  over local words [src, +len) (4-aligned, len % 4 == 0):
 *                  args[ACC_ARG_FLAGS] & ACC_F_INIT: seed the buffer first
 *                  (accelInit, args[ACC_ARG_SEED]); then
 *                  args[ACC_ARG_ITERATIONS] iterations (accelStep). With
 *                  args[ACC_ARG_PUBLISH] = p > 0, after every p-th iteration
 *                  and the last one it publishes a ProgressRecord
 *                  (src/shm/progress_record.ts) at local offset dst:
 *
 *                    Atomics.store(seq, s + 1)      odd: being written
 *                    store iteration, checksum, done
 *                    Atomics.store(seq, s + 2)      even: stable
 *
 *                  A reader that is not this device (a NIC DMA-reading the
 *                  record through a P2P mapping) must treat an odd or moved
 *                  seq as torn. The record is never published for
 *                  iteration 0: a zeroed record means "not started".
 *                  With ACC_F_MIRROR_VA (bounce mode; the device must be
 *                  bound, ImporterBinding.bind) every publish is also
 *                  DMA-written to process VA args[ACC_ARG_MIRROR_LO] +
 *                  args[ACC_ARG_MIRROR_HI] * 2^32 in the same seqcount
 *                  order: seq (odd), body, seq (even) — three DMAs.
 *                  -> Success, result = checksum after the last iteration | 0.
 * ACC_OP_COPY_TO_VA  local [src, +len) -> process VA dst (bound device;
 *                  the bounce copy of a result into system RAM).
 *                  -> Success, result = 0.
 * ACC_OP_DMA_IN    device address src (bus address, or IOVA behind an IOMMU)
 *                  -> local [dst, +len): the accelerator pulls a buffer in
 *                  from system RAM (the bounce path's last copy).
 *                  -> Success, result = 0.
 * ACC_OP_TRANSFORM_VA  process VA [src, +len) (len % 4 == 0) through a
 *                  local staging area of args[ACC_ARG_STAGE_PAGES] pages at
 *                  page args[ACC_ARG_STAGE_PAGE]: read, accelTransform with
 *                  args[ACC_ARG_SEED], write back; word i of the range is
 *                  word args[ACC_ARG_WORD0] + i of the transform (a buffer
 *                  transformed in several commands, chunk by chunk, gives
 *                  the bytes one command would). Pages of the range that
 *                  were migrated to this device (HMM device-private) are
 *                  transformed where they are, a staging-sized chunk at a
 *                  time (workers/runtime/local_view.ts), others by DMA.
 *                  -> Success, result = 0.
 *
 * Errors: a VA fault or DMA error -> DataTransferError, result = the
 * device error log sequence (DeviceHandle.call('errors') has the message);
 * a bad field -> InvalidField; an unknown opcode -> InvalidOpcode.
 *
 * Control (DeviceEndpointApi.deviceCmd):
 *   { op: 'acc-counters' } -> AccCounters (cumulative since start; the
 *                             `last*` fields describe the last COMPUTE).
 *
 * Properties (src/devices/device_kinds.ts):
 *   x-corrupt-iteration  test knob: after that iteration of every COMPUTE
 *                        (and after every TRANSFORM), flip bit 0 of word
 *                        x-corrupt-word of the buffer — a device bug the
 *                        CPU reference must catch.
 */

/** Host queue the accelerator's commands go to. */
export const ACC_HOST_QID = 0;

export const ACC_OP_COMPUTE = 1;
export const ACC_OP_COPY_TO_VA = 2;
export const ACC_OP_TRANSFORM_VA = 3;
export const ACC_OP_DMA_IN = 4;

/** ACC_OP_COMPUTE argument positions (SqCommand.args). */
export const ACC_ARG_ITERATIONS = 0;
export const ACC_ARG_SEED = 1;
export const ACC_ARG_PUBLISH = 2;
export const ACC_ARG_FLAGS = 3;
export const ACC_ARG_MIRROR_LO = 4;
export const ACC_ARG_MIRROR_HI = 5;

/** ACC_OP_TRANSFORM_VA argument positions (ACC_ARG_SEED is shared). */
export const ACC_ARG_STAGE_PAGE = 0;
export const ACC_ARG_STAGE_PAGES = 2;
export const ACC_ARG_WORD0 = 3;

/** ACC_ARG_FLAGS bits. */
export const ACC_F_INIT = 1;
export const ACC_F_MIRROR_VA = 2;

/** Answer of deviceCmd({ op: 'acc-counters' }). */
export interface AccCounters {
  readonly errno: 0;
  readonly computes: number;
  readonly iterations: number;
  /** ProgressRecord updates (local), and those also mirrored to process memory. */
  readonly publishes: number;
  readonly mirrored: number;
  /** Wall time of the last COMPUTE, from its first word to its completion, µs. */
  readonly lastComputeUs: number;
  readonly lastIterations: number;
  readonly transforms: number;
  /** Kernel passes (init, init+step, step, checksum, a TRANSFORM chunk) the WebAssembly kernels ran in place; the JS kernels ran the others (plain local memory). */
  readonly simdPasses: number;
}

/** Splits a process VA (< 2^53) into the two int32 args of ACC_F_MIRROR_VA. */
export function vaArgs(va: number): [lo: number, hi: number] {
  return [va % 0x1_0000_0000 | 0, Math.floor(va / 0x1_0000_0000)];
}

/** ACC_OP_COMPUTE's args, each at its ACC_ARG_* position; `mirrorVa` sets ACC_F_MIRROR_VA. */
export function computeArgs(a: { iterations: number; seed: number; publishEvery: number; flags: number; mirrorVa?: number | null }): number[] {
  const args = [0, 0, 0, 0, 0, 0];
  args[ACC_ARG_ITERATIONS] = a.iterations;
  args[ACC_ARG_SEED] = a.seed;
  args[ACC_ARG_PUBLISH] = a.publishEvery;
  args[ACC_ARG_FLAGS] = a.flags;
  if (a.mirrorVa !== undefined && a.mirrorVa !== null) {
    args[ACC_ARG_FLAGS] |= ACC_F_MIRROR_VA;
    [args[ACC_ARG_MIRROR_LO], args[ACC_ARG_MIRROR_HI]] = vaArgs(a.mirrorVa);
  }
  return args;
}

export function vaFromArgs(lo: number, hi: number): number {
  return (lo >>> 0) + hi * 0x1_0000_0000;
}

/**
 * The COMPUTE / TRANSFORM kernel's definition. The device runs
 * src/devices/models/accel_kernel.ts; the workloads recompute it with
 * src/workloads/reference/accel.ts (two implementations, one definition).
 * All arithmetic is 32-bit (Math.imul, | 0); x is an Int32Array.
 *
 *   mix32(v)    v = imul(v ^ v >>> 16, ACC_MIX_A); v = imul(v ^ v >>> 15, ACC_MIX_B); v ^ v >>> 16
 *   init        x[i] = mix32(seed ^ imul(i, ACC_GOLDEN))
 *   iteration k prev = seed ^ k; for i in 0..n-1:
 *                 x[i] = imul(x[i] ^ x[i] >>> 15, ACC_STEP_MUL) + prev + k; prev = x[i]
 *   transform   x[i] = mix32(x[i] ^ seed ^ imul(first + i, ACC_GOLDEN)) + 1
 *               (i counted from the start of the whole range)
 *   checksum    four-lane word FNV-1a (src/devices/fnv.ts) over the bytes of x[0..n-1]
 */
export const ACC_GOLDEN = 0x9e3779b1 | 0;
export const ACC_MIX_A = 0x7feb352d;
export const ACC_MIX_B = 0x846ca68b | 0;
export const ACC_STEP_MUL = 0x2c1b3c6d;
