/**
 * Machine-wide constants of the emulated hardware. Named limits first, as
 * lib/test_hmm.c does (DMIRROR_NDEVICES, DEVMEM_CHUNK_SIZE).
 */

/** Page size of system RAM, device memory and BAR slots. */
export const PAGE_SHIFT = 12;
export const PAGE_SIZE = 1 << PAGE_SHIFT;

/**
 * A streaming device looks at its wake word at least this often, whatever its
 * DMA chunk size: it bounds invalidation latency (DESIGN.md section 4).
 */
export const DMA_CHECK_BYTES = 64 * 1024;

/**
 * Inside a DMA chunk the engine copies pieces of this size and polls its
 * invalidation word between them (two Atomics.loads): a pending
 * invalidation cuts the chunk there and is served at once, so an ack waits
 * for at most ~4 µs of copying instead of a whole chunk (issue 11, item 6).
 */
export const DMA_POLL_BYTES = 16 * 1024;

/**
 * Longest run a device read or write decodes and copies as one chunk
 * (between two checkpoints). Invalidation latency is bounded by
 * DMA_POLL_BYTES, not by this: a larger chunk only means fewer decodes and
 * safety checks per byte (issue 11, item 4).
 */
export const DMA_RUN_BYTES = 256 * 1024;

/** Bus address where the first device's BAR space starts (system RAM sits below). */
export const BAR_SPACE_BASE = 0x1_0000_0000;
/** Bus address space reserved per device for its BARs. */
export const BAR_SPACE_STRIDE = 0x1000_0000;
/** Offset of the memory BAR (BAR2) within a device's BAR space; BAR0 (registers) is at 0. */
export const BAR2_OFFSET = 0x0100_0000;

/** Poison byte written into freed exporter pages (like the kernel's PAGE_POISON). */
export const POISON_BYTE = 0x6b;
