/**
 * fabric.* rows: the modeled PCIe aggregate of N concurrent streams on the
 * reference GPU box of src/hw/fabric_load.ts (8 GPU-like devices, 4 per
 * leaf switch, two leaves under one top switch; each GPU streams to its
 * neighbour), priced by the bandwidth model — peer to peer, and bounced
 * through system RAM. Virtual time, not emulator throughput: the figures
 * are the model's (deterministic), the ratio is what issue 15 asks for
 * (p2p / bounce for 8 devices under two switches).
 *   fabric.bounce.<N>   GB/s, N = 1, 2, 4, 8
 *   fabric.p2p.<N>      GB/s, ratio to fabric.bounce.<N>
 *   fabric.p2p.8.dgx1   the same 8 streams with each switch on a root port of its own
 */
import { gpuBox, p2pVsBounce } from '../src/hw/fabric_load.js';
import type { RowSet } from './stats.js';

const GB = 1e9;

export function fabricRows(rows: RowSet, repeats: number): void {
  const box = gpuBox({ gpus: 8, fanout: 4 });
  const dgx1 = gpuBox({ gpus: 8, fanout: 4, generate: { topSwitch: false } });
  const times = (x: number) => new Array<number>(repeats).fill(x);
  for (const n of [1, 2, 4, 8]) {
    const f = p2pVsBounce(box.fabric, box.names, n);
    rows.add(`fabric.bounce.${n}`, 'GB/s', times(f.bounce.aggregate / GB), null, `modeled: ${n} neighbour stream(s) on 8 GPUs under two switches, bounced through RAM; limit: ${f.bounce.bottleneck}`);
    rows.add(`fabric.p2p.${n}`, 'GB/s', times(f.p2p.aggregate / GB), `fabric.bounce.${n}`, `modeled: the same ${n} stream(s) peer to peer; ratio = p2p / bounce`);
  }
  const d = p2pVsBounce(dgx1.fabric, dgx1.names, 8);
  rows.add('fabric.bounce.8.dgx1', 'GB/s', times(d.bounce.aggregate / GB), null, `modeled: 8 streams, each switch on its own root port, bounced; limit: ${d.bounce.bottleneck}`);
  rows.add('fabric.p2p.8.dgx1', 'GB/s', times(d.p2p.aggregate / GB), 'fabric.bounce.8.dgx1', 'modeled: the same 8 streams peer to peer; ratio = p2p / bounce');
}
