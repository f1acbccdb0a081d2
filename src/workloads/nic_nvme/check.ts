/**
 * The data check of workload (1): replays the seeded client stream on the
 * CPU against a shadow copy of the namespace and compares every READ the
 * NIC delivered with what was last written to those blocks. Requests are
 * replayed in request order, which is the order both paths submit them to
 * the NVMe's one queue (and an NVMe queue executes in order).
 *
 * The IO log comes from the NIC (deviceCmd 'nic-iolog', NicIoLog entries).
 */
import { NicIoLog, NIC_IOLOG_DONE, type ClientStream } from '../../devices/nic_abi.js';
import { NVME_OP_READ, NVME_OP_WRITE } from '../../devices/nvme_abi.js';
import { fnv1aReference } from '../reference/checksum.js';
import { clientPayloadReference, clientRequestReference } from '../reference/nic_client.js';

export interface ShadowCheck {
  readonly ios: number;
  readonly reads: number;
  readonly writes: number;
  /** READs of blocks some earlier WRITE had touched (the check is not only of zeroes). */
  readonly readsOfWritten: number;
  readonly problems: readonly string[];
  readonly problemCount: number;
}

const hex = (n: number) => `0x${(n >>> 0).toString(16).padStart(8, '0')}`;

export function checkAgainstShadow(s: ClientStream, blockBytes: number, ios: number, log: Int32Array): ShadowCheck {
  const ioBytes = s.blocksPerIo * blockBytes;
  const shadow = new Uint8Array(s.blocks * blockBytes);
  const written = new Uint8Array(s.blocks);
  const problems: string[] = [];
  let problemCount = 0;
  let reads = 0;
  let writes = 0;
  let readsOfWritten = 0;
  const problem = (p: string) => {
    if (problemCount++ < 5) problems.push(p);
  };
  for (let io = 0; io < ios; io++) {
    const req = clientRequestReference(s, io);
    const e = io * NicIoLog.kFieldCount;
    const what = `request ${io} (${req.write ? 'WRITE' : 'READ'} lba ${req.lba})`;
    if (e + NicIoLog.kFieldCount > log.length || (log[e + NicIoLog.flags] & NIC_IOLOG_DONE) === 0) {
      problem(`${what}: no response reached the client`);
      continue;
    }
    const op = log[e + NicIoLog.opcode];
    if (op !== (req.write ? NVME_OP_WRITE : NVME_OP_READ) || log[e + NicIoLog.lba] !== req.lba) {
      problem(`${what}: the NIC submitted opcode ${op} lba ${log[e + NicIoLog.lba]}`);
      continue;
    }
    const at = req.lba * blockBytes;
    if (req.write) {
      shadow.set(clientPayloadReference(s, io, ioBytes), at);
      written.fill(1, req.lba, req.lba + s.blocksPerIo);
      writes++;
      continue;
    }
    reads++;
    if (written.subarray(req.lba, req.lba + s.blocksPerIo).some((b) => b === 1)) readsOfWritten++;
    const want = fnv1aReference(shadow.subarray(at, at + ioBytes));
    const got = log[e + NicIoLog.checksum];
    if (got !== want) problem(`${what}: the client got data with checksum ${hex(got)}, the shadow copy has ${hex(want)}`);
  }
  return { ios, reads, writes, readsOfWritten, problems, problemCount };
}
