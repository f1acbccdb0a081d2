/**
 * Per-device control block (not bus-visible) and register file (BAR0,
 * bus-visible), plus the device's statistics block.
 *
 * Wake protocol — one wake word per worker, bumped by every producer of work:
 *
 *   producer (main or a peer device)      device worker
 *   --------------------------------      -------------
 *   Atomics.store(work word)              seen = Atomics.load(ctl, wake)
 *   Atomics.add(ctl, wake, 1)             ...look at every work word...
 *   Atomics.notify(ctl, wake)             Atomics.wait(ctl, wake, seen)
 *                                         [Required: a store made before the
 *                                          add is seen by the next pass]
 *
 * The worker loads `wake` *before* it looks for work, so a bump that lands
 * while it looks makes the wait return at once (the value no longer equals
 * `seen`). Pairs with ringWake() below and with DeviceLoop.run in
 * workers/runtime/device_loop.ts.
 *
 * Invalidation slot (protocol drawn in src/kernel/invalidate_broadcast.ts): main writes up to
 * INV_BATCH ranges, then stores invSeq, then bumps wake; the worker drops
 * translations for the ranges and stores invAck = invSeq.
 */
import { defineLayout } from './layout.js';

/** Number of submission/completion queue pairs a device exposes. */
export const NR_QUEUES = 4;
/** Ranges carried by one invalidation broadcast (DESIGN.md section 4). */
export const INV_BATCH = 64;
/** One invalidation range inside DeviceCtl.invRanges: [start, end) of process VAs, two u64s. */
export const InvRange = defineLayout({
  start: { words: 2, writer: 'main', doc: 'first byte of the range (u64: lo, hi; storeU64/loadU64)' },
  end: { words: 2, writer: 'main', doc: 'end of the range, exclusive (u64: lo, hi)' },
});
/** Words per invalidation range. */
export const INV_RANGE_WORDS = InvRange.kFieldCount;

export const DeviceCtl = defineLayout({
  wake: { writer: 'both', doc: 'bumped by anything that gives the worker work; the worker Atomics.waits on it' },
  state: { writer: 'worker', doc: 'DeviceState: init, running, stopped, failed' },
  ctrlReq: { writer: 'main', doc: 'control (comlink) calls posted; the worker yields to its event loop while ctrlReq != ctrlServed' },
  ctrlServed: { writer: 'worker', doc: 'control calls the worker has started serving' },
  irq: { writer: 'worker', doc: 'MSI to the host: bumped after a completion entry for the host is posted; main waits with waitAsync' },
  heartbeat: { writer: 'worker', doc: 'bumped on every pass of the device loop' },
  invSeq: { writer: 'main', doc: 'sequence of the latest invalidation batch posted to this device' },
  invCount: { writer: 'main', doc: 'ranges valid in invRanges for invSeq' },
  invRanges: { words: INV_BATCH * INV_RANGE_WORDS, writer: 'main', doc: 'INV_BATCH InvRange records' },
  invAck: { writer: 'worker', doc: 'last invSeq whose ranges the device no longer touches' },
  invDelayMs: { writer: 'main', doc: 'fault injection: the device acks invalidations this late' },
  invIgnore: { writer: 'main', doc: 'fault injection: the device acks but keeps its translations (a rogue device)' },
  invLagMs: { writer: 'main', doc: 'fault injection: a slow but legal device, which keeps DMAing through its old translations this long after an invalidation is posted, then drops them and acks' },
  invWriting: { writer: 'main', doc: 'seqlock over invCount/invRanges: odd while main rewrites them (a batch posted to a parked device that has not served the last one yet); the worker re-reads until it sees the same even value before and after' },
  invPolls: { writer: 'worker', doc: 'bumped each time the device looks for a pending invalidation (InvalidationPort.pending/check); main polls for an ack only while it moves (the device is on a CPU)' },
  cqWait: { writer: 'worker', doc: '1 while one of its queues holds commands and its CQ is full: a consumer that frees a CQ slot wakes the device only then (CqConsumer.poll; a Dekker pair with the CQyHDBL store, drawn in src/shm/ring.ts)' },
  invSleeper: { writer: 'main', doc: 'the invSeq main sleeps on in Atomics.wait(invAck) after its poll gave up, 0 otherwise; a device that acks that seq waits until main is awake and clears it, yielding its core (Atomics.wait on this word) after a short spin, ACK_YIELD_MS at most (InvalidationPort.yieldToSleeper)' },
});

export const enum DeviceState {
  Init = 0,
  Running = 1,
  Stopped = 2,
  Failed = 3,
}

/** BAR0: the registers a peer (or the host) may write through the bus. */
export const DeviceRegs = defineLayout({
  sqTail: { words: NR_QUEUES, writer: 'peer', doc: 'submission queue tail doorbells (NVMe SQyTDBL)' },
  cqHead: { words: NR_QUEUES, writer: 'peer', doc: 'completion queue head doorbells (NVMe CQyHDBL)' },
  msi: { writer: 'peer', doc: 'interrupt mailbox: a peer that completes work for this device DMA-writes a count here (MSI), which wakes it' },
});

/** Byte offset in BAR0 of register word `reg` (a DeviceRegs offset, e.g. DeviceRegs.sqTail + qid): what a peer adds to BAR0's address. */
export function deviceRegByte(reg: number): number {
  return reg * Int32Array.BYTES_PER_ELEMENT;
}

/**
 * Statistics, one float64 slot per field (the offsets index a
 * Float64Array). Each field has one writer (the worker, or for mapNs the
 * kernel's fault server); the other side reads them after stop or as a
 * live approximation.
 */
export const DeviceStats = defineLayout({
  bytesFromRam: { writer: 'worker', doc: 'DMA bytes read from system RAM' },
  bytesToRam: { writer: 'worker', doc: 'DMA bytes written to system RAM' },
  bytesFromPeer: { writer: 'worker', doc: 'DMA bytes read from another device (P2P)' },
  bytesToPeer: { writer: 'worker', doc: 'DMA bytes written to another device (P2P)' },
  bytesLocal: { writer: 'worker', doc: 'DMA bytes between the device and its own memory' },
  dmaOps: { writer: 'worker', doc: 'DMA transfers started' },
  dmaErrors: { writer: 'worker', doc: 'DMA transfers aborted (bad address, IOMMU fault, revoked)' },
  commands: { writer: 'worker', doc: 'queue commands completed' },
  dmaNs: { writer: 'worker', doc: 'wall time spent copying' },
  computeNs: { writer: 'worker', doc: 'wall time spent computing' },
  invalidations: { writer: 'worker', doc: 'invalidation batches acked' },
  ackYields: { writer: 'worker', doc: 'acks after which the device yielded its core to the main thread still asleep on them (InvalidationPort.yieldToSleeper)' },
  faultWaitNs: { writer: 'worker', doc: 'wall time the device waited on its page requests (request posted to reply seen, retries included)' },
  pagesRefaulted: { writer: 'worker', doc: 'pages faulted in again after an invalidation dropped their translation (the device TLB counts them)' },
  mapNs: { writer: 'main', doc: "kernel time serving this device's page requests (hmmRangeFault, p2p map, IOMMU map, reply): the mapping stage" },
});

/**
 * Wakes a device: the second half of every doorbell. Pairs with the
 * Atomics.load(wake) at the top of DeviceLoop.run.
 */
export function ringWake(ctl: Int32Array): void {
  Atomics.add(ctl, DeviceCtl.wake, 1);
  Atomics.notify(ctl, DeviceCtl.wake);
}
