/**
 * The NIC's generator of the synthetic client stream of workload (1)
 * (workers/nic_nvme_engine.ts): definition (ClientStream, CLIENT_*) in
 * src/devices/nic_abi.ts. The checker replays the stream with its own
 * implementation, src/workloads/reference/nic_client.ts.
 */
import { CLIENT_LBA_SALT, CLIENT_MIX_A, CLIENT_MIX_B, CLIENT_PAYLOAD_SEED_MUL, CLIENT_SEED_SALT, type ClientRequest, type ClientStream } from '../nic_abi.js';

/** A 32-bit integer hash (lowbias32, Chris Wellons). */
function mix(x: number): number {
  x ^= x >>> 16;
  x = Math.imul(x, CLIENT_MIX_A);
  x ^= x >>> 15;
  x = Math.imul(x, CLIENT_MIX_B);
  x ^= x >>> 16;
  return x >>> 0;
}

export function clientRequest(s: ClientStream, io: number): ClientRequest {
  const h = mix(mix(s.seed ^ CLIENT_SEED_SALT) ^ io);
  const write = h % 100 < s.writePct;
  const lba = mix(h ^ CLIENT_LBA_SALT) % (s.blocks - s.blocksPerIo + 1);
  return { write, lba };
}

/** The data a WRITE request carries: `out` filled with words seeded by (seed, io). */
export function clientPayload(s: ClientStream, io: number, out: Uint8Array): void {
  if (out.length % 4 !== 0 || out.byteOffset % 4 !== 0) throw new RangeError(`client payload of ${out.length} bytes at ${out.byteOffset}: whole aligned words only`);
  const w = new Uint32Array(out.buffer, out.byteOffset, out.length / 4);
  let x = mix(s.seed * CLIENT_PAYLOAD_SEED_MUL + io) | 1;
  for (let i = 0; i < w.length; i++) {
    // xorshift32
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    w[i] = x;
  }
}
