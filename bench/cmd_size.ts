/**
 * Throughput against command size (`peervma bench`, dma section; the
 * bench report charts it): nic0 streams acc0's exported VMA by VA with
 * the `va-stream` device command, as bench/dma_rig.ts dma.p2p.contig does,
 * once per command size, TLB warm. Small commands pay the per-command
 * cost (doorbell, decode, translate, completion) on few bytes; large ones
 * approach the copy rate.
 *
 *   dma.p2p.cmd.<size>   MB/s, <size> in CMD_SIZES (4k ... 4m), vs memcpy.dram
 *
 * The span must be DRAM scale like memcpy.dram's (the suite passes the dma
 * section's 128 MiB): over 32 MiB the rows read from cache and came out at
 * 1.8-2.0x memcpy.dram at 64 KiB and up, a ratio of two different things.
 *
 * Every size's bytes are verified once against the exporter's memory.
 */
import { Machine } from '../src/devices/machine.js';
import { BarExporter } from '../src/drivers/bar_exporter.js';
import { ImporterBinding } from '../src/drivers/importer_binding.js';
import { Kernel } from '../src/kernel/kernel.js';
import type { P2pPolicy } from '../src/kernel/kernel_types.js';
import type { VaStreamArgs, VaStreamResult } from '../src/devices/protocol.js';
import { PAGE_SIZE } from '../src/shm/constants.js';
import { deviceQuery } from '../src/workloads/command_runner.js';
import { MiB } from '../src/workloads/memcpy_baseline.js';
import { repeat, type RowSet } from './stats.js';

const KiB = 1024;
/** Command sizes swept, and their row suffixes. */
export const CMD_SIZES: readonly (readonly [number, string])[] = [
  [4 * KiB, '4k'],
  [16 * KiB, '16k'],
  [64 * KiB, '64k'],
  [256 * KiB, '256k'],
  [MiB, '1m'],
  [4 * MiB, '4m'],
];

/** One switch between exporter and importer: this measures the emulator, not a topology. */
const oneSwitch: P2pPolicy = () => ({ map: 'bus-addr', distance: 2, reason: 'bench: exporter and importer behind one switch' });

export interface CmdSizeOptions {
  /** Bytes streamed per pass (a multiple of the largest command). */
  readonly span: number;
  readonly repeats: number;
}

/** Adds dma.p2p.cmd.<size> to `rows`. */
export async function cmdSizeRows(rows: RowSet, o: CmdSizeOptions, log: (m: string) => void = () => undefined): Promise<void> {
  log('bench:   dma: throughput vs command size');
  const machine = await Machine.create({
    ramBytes: 16 * MiB,
    timeoutMs: 20000,
    devices: [
      { name: 'acc0', kind: 'accelerator', memBytes: o.span + 4 * MiB, barBytes: o.span, props: {} },
      { name: 'nic0', kind: 'nic', memBytes: o.span, barBytes: 0, props: {} },
    ],
  });
  try {
    await machine.start();
    const kernel = Kernel.boot(machine, { policy: oneSwitch, check: true });
    const mm = kernel.createMm();
    const ex = new BarExporter(kernel, 'acc0', { importers: '*', readOnly: false, requireIommu: false, cpuMappable: false });
    const nic0 = await ImporterBinding.bind(kernel, 'nic0', mm);
    const npages = o.span / PAGE_SIZE;
    const m = await ex.mmap(mm, npages);
    const pages = Array.from({ length: npages }, (_, i) => ex.pageOf(m.vma, i));
    const stream = (args: Omit<VaStreamArgs, 'va' | 'len'>): Promise<VaStreamResult> =>
      deviceQuery(machine, machine.device('nic0'), { op: 'va-stream', va: m.va, len: o.span, ...args }, kernel);
    await stream({ cmdBytes: MiB }); // faults the whole export in: every size runs warm
    for (const [bytes, suffix] of CMD_SIZES) {
      fill(machine.device('acc0').shm.mem!, pages, bytes);
      await stream({ cmdBytes: bytes });
      verify(machine, pages, `dma.p2p.cmd.${suffix}`);
      const xs = await repeat(o.repeats, async () => {
        const r = await stream({ cmdBytes: bytes, passes: 2 });
        return r.bytes / 1e3 / r.ms;
      });
      rows.add(`dma.p2p.cmd.${suffix}`, 'MB/s', xs, 'memcpy.dram', `nic0 reads ${o.span / MiB} MiB of acc0's exported VMA by VA, ${suffix.toUpperCase().replace('K', ' KiB').replace('M', ' MiB')} commands, TLB warm`);
    }
    await nic0.close();
    await mm.exit();
  } finally {
    await machine.shutdown();
  }
}

/** A pattern that differs per command size, so a size that moved nothing cannot pass on the last one's bytes. */
function fill(mem: Uint8Array, pages: readonly number[], salt: number): void {
  for (const [i, p] of pages.entries()) {
    const w = new Int32Array(mem.buffer, mem.byteOffset + p * PAGE_SIZE, PAGE_SIZE / 4);
    for (let k = 0; k < w.length; k += 97) w[k] = (i * 2654435761 + k + salt) | 0;
  }
}

/** The exporter's pages, in VMA order, must equal nic0's local memory [0, span). */
function verify(machine: Machine, pages: readonly number[], what: string): void {
  const a = machine.device('acc0').shm.mem!;
  const b = machine.device('nic0').shm.mem!;
  for (const [i, p] of pages.entries()) {
    const x = Buffer.from(a.buffer, a.byteOffset + p * PAGE_SIZE, PAGE_SIZE);
    const y = Buffer.from(b.buffer, b.byteOffset + i * PAGE_SIZE, PAGE_SIZE);
    if (!x.equals(y)) throw new Error(`bench: ${what}: nic0 read wrong bytes at page ${i} (device page ${p})`);
  }
}
