/**
 * The synthetic client of workload (1): a seeded stream of block READs and
 * WRITEs that "arrives over the network" at the NIC. Stateless per request
 * (request i is a function of the seed and i), so the NIC (workers/nic_
 * nvme_engine.ts) generates it on the device and the checker (check.ts)
 * replays it on the CPU without a channel between them.
 */
export interface ClientStream {
  readonly seed: number;
  /** Blocks the client addresses: LBAs [0, blocks - blocksPerIo]. */
  readonly blocks: number;
  readonly blocksPerIo: number;
  /** Percentage of WRITEs. */
  readonly writePct: number;
}

export interface ClientRequest {
  readonly write: boolean;
  readonly lba: number;
}

/** A 32-bit integer hash (lowbias32, Chris Wellons). */
function mix(x: number): number {
  x ^= x >>> 16;
  x = Math.imul(x, 0x7feb352d);
  x ^= x >>> 15;
  x = Math.imul(x, 0x846ca68b);
  x ^= x >>> 16;
  return x >>> 0;
}

export function clientRequest(s: ClientStream, io: number): ClientRequest {
  const h = mix(mix(s.seed ^ 0x9e3779b9) ^ io);
  const write = h % 100 < s.writePct;
  const lba = mix(h ^ 0x85ebca6b) % (s.blocks - s.blocksPerIo + 1);
  return { write, lba };
}

/** The data a WRITE request carries: `out` filled with words seeded by (seed, io). */
export function clientPayload(s: ClientStream, io: number, out: Uint8Array): void {
  if (out.length % 4 !== 0 || out.byteOffset % 4 !== 0) throw new RangeError(`client payload of ${out.length} bytes at ${out.byteOffset}: whole aligned words only`);
  const w = new Uint32Array(out.buffer, out.byteOffset, out.length / 4);
  let x = mix(s.seed * 0x10001 + io) | 1;
  for (let i = 0; i < w.length; i++) {
    // xorshift32
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    w[i] = x;
  }
}
