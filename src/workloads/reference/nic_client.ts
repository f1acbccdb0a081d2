/**
 * The checker's replay of workload (1)'s client stream (definition:
 * ClientStream and CLIENT_* in src/devices/nic_abi.ts), written apart from
 * the NIC's generator (src/devices/models/nic_client.ts).
 */
import { CLIENT_LBA_SALT, CLIENT_MIX_A, CLIENT_MIX_B, CLIENT_PAYLOAD_SEED_MUL, CLIENT_SEED_SALT, type ClientRequest, type ClientStream } from '../../devices/nic_abi.js';

function lowbias32(v: number): number {
  const a = Math.imul(v ^ (v >>> 16), CLIENT_MIX_A);
  const b = Math.imul(a ^ (a >>> 15), CLIENT_MIX_B);
  return (b ^ (b >>> 16)) >>> 0;
}

/** Request `io` of the stream: READ or WRITE, and its first block. */
export function clientRequestReference(s: ClientStream, io: number): ClientRequest {
  const h = lowbias32(lowbias32(s.seed ^ CLIENT_SEED_SALT) ^ io);
  return { write: h % 100 < s.writePct, lba: lowbias32(h ^ CLIENT_LBA_SALT) % (s.blocks - s.blocksPerIo + 1) };
}

/** The bytes WRITE request `io` carries, `bytes` long (whole words). */
export function clientPayloadReference(s: ClientStream, io: number, bytes: number): Uint8Array {
  const out = new Uint8Array(bytes);
  const view = new DataView(out.buffer);
  let x = lowbias32(s.seed * CLIENT_PAYLOAD_SEED_MUL + io) | 1;
  for (let at = 0; at + 4 <= bytes; at += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    view.setUint32(at, x >>> 0, true);
  }
  return out;
}
