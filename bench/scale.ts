/**
 * Scaling rows of `peervma bench` (issue 15, item 5): N streaming devices
 * at once, N = 1, 2, 4, 8, 16, 32 (the quick suite keeps 1, 4, 16).
 *
 *   scale.stream.<N>            nic0..nic<N-1> each stream one N-th of a
 *                               128 MiB VMA exported by acc0, by VA (the
 *                               va-stream command of bench/dma_rig.ts's
 *                               rows): aggregate MB/s, ratio to
 *                               memcpy.2threads; run tokens on (one per core)
 *   scale.stream.<N>.notokens   the same machine shape with run tokens off
 *   scale.ack.p50.<N>, .p99.<N> invalidation ack latency of each streaming
 *                               device (the kernel's per-device ack times)
 *                               while the main thread revokes a page outside
 *                               the streams: µs, ratio to atomics.rtt; tokens on
 *   scale.ack.p50|p99.<N>.notokens  the same with run tokens off
 *   scale.pcie.<N>              modeled PCIe aggregate of N accelerator ->
 *                               NIC streams, P2P under their switch, in a
 *                               DGX-style tree (switches of 2 pairs, half of
 *                               them under each of two root complexes):
 *                               ratio to scale.pcie.<N>.bounce, the same
 *                               streams through system RAM
 *
 * Every device's bytes are verified once against the exporter's memory.
 * Local memory folds over 16 MiB per device (32 devices x 16 MiB).
 */
import { Machine } from '../src/devices/machine.js';
import { BarExporter } from '../src/drivers/bar_exporter.js';
import { ImporterBinding } from '../src/drivers/importer_binding.js';
import { Kernel } from '../src/kernel/kernel.js';
import { PROT_READ, PROT_WRITE } from '../src/kernel/mm.js';
import type { P2pPolicy } from '../src/kernel/kernel_types.js';
import type { VaStreamResult } from '../src/devices/protocol.js';
import { buildFabricUnchecked } from '../src/hw/topology.js';
import { TopologySchema, type TopologySpec } from '../src/hw/topology_schema.js';
import { hostCores } from '../src/devices/run_tokens.js';
import { PAGE_SIZE } from '../src/shm/constants.js';
import { MiB } from '../src/workloads/memcpy_baseline.js';
import { quantile, type RowSet } from './stats.js';

export const SCALE_FULL = [1, 2, 4, 8, 16, 32] as const;
export const SCALE_QUICK = [1, 4, 16] as const;

export interface ScaleOptions {
  readonly counts: readonly number[];
  readonly repeats: number;
  /** Length of each streaming window (ms). */
  readonly streamMs: number;
  /** Bytes of the exported VMA the N devices share (default 128 MiB, DRAM scale like dma.*). */
  readonly span?: number;
}

const SPAN = 128 * MiB;
const spanOf = (o: ScaleOptions): number => o.span ?? SPAN;
const LOCAL = 16 * MiB;
const CMD = MiB;
const oneSwitch: P2pPolicy = () => ({ map: 'bus-addr', distance: 2, reason: 'bench: exporter and importers behind one switch' });

export async function scaleRows(rows: RowSet, o: ScaleOptions, log: (m: string) => void = () => undefined): Promise<void> {
  const tokens = hostCores();
  log(`bench:   scale: two machines, run tokens on (${tokens}) and off`);
  // Both machines live at once and their windows alternate, so load that drifts
  // during the run (other processes on these cores) weighs on both alike.
  const on = await openScaleRig(o, tokens);
  const off = await openScaleRig(o, 'off').catch(async (e: unknown) => {
    await on.close();
    throw e;
  });
  const won = new Map<number, Window[]>();
  const woff = new Map<number, Window[]>();
  try {
    for (const n of o.counts) {
      log(`bench:   scale: ${n} streaming device(s)`);
      await on.prepare(n);
      await off.prepare(n);
      const a: Window[] = [];
      const b: Window[] = [];
      for (let k = 0; k < o.repeats; k++) {
        a.push(await on.window(n));
        b.push(await off.window(n));
      }
      won.set(n, a);
      woff.set(n, b);
    }
    await on.finish();
    await off.finish();
  } finally {
    await on.close();
    await off.close();
  }
  for (const n of o.counts) {
    const a = won.get(n)!;
    const b = woff.get(n)!;
    rows.add(`scale.stream.${n}`, 'MB/s', a.map((w) => w.mbs), 'memcpy.2threads', `${n} devices stream ${spanOf(o) / MiB / n} MiB each of one exported VMA at once, aggregate; run tokens on (${tokens})`);
    rows.add(`scale.stream.${n}.notokens`, 'MB/s', b.map((w) => w.mbs), 'memcpy.2threads', `as scale.stream.${n}, run tokens off`);
  }
  for (const n of o.counts) {
    const a = won.get(n)!;
    const b = woff.get(n)!;
    rows.add(`scale.ack.p50.${n}`, 'us', a.map((w) => w.p50), 'atomics.rtt', `invalidation ack of each of ${n} streaming devices (kernel's ack times), p50 of each window; run tokens on`);
    rows.add(`scale.ack.p99.${n}`, 'us', a.map((w) => w.p99), 'atomics.rtt', `as scale.ack.p50.${n}, p99`);
    rows.add(`scale.ack.p50.${n}.notokens`, 'us', b.map((w) => w.p50), 'atomics.rtt', `as scale.ack.p50.${n}, run tokens off`);
    rows.add(`scale.ack.p99.${n}.notokens`, 'us', b.map((w) => w.p99), 'atomics.rtt', `as scale.ack.p99.${n}, run tokens off`);
  }
  for (const n of o.counts) {
    const m = modeled(n);
    rows.add(`scale.pcie.${n}.bounce`, 'MB/s', [m.bounce], null, `modeled PCIe aggregate of ${n} accelerator -> NIC streams through system RAM (DGX-style tree)`);
    rows.add(`scale.pcie.${n}`, 'MB/s', [m.p2p], `scale.pcie.${n}.bounce`, `modeled PCIe aggregate of the same ${n} streams, P2P under their switch`);
  }
}

interface Window {
  mbs: number;
  p50: number;
  p99: number;
}

interface ScaleRig {
  /** Binds the first n NICs (more as n grows), streams each slice once (faults) and checks the bytes. */
  prepare(n: number): Promise<void>;
  /** One throughput window, then one ack window, with n devices streaming. */
  window(n: number): Promise<Window>;
  /** Safety violations must be 0; unbinds. */
  finish(): Promise<void>;
  close(): Promise<void>;
}

/** acc0 exports a 128 MiB VMA; nic0..nic<max-1> import it; run tokens as given. */
async function openScaleRig(o: ScaleOptions, runTokens: number | 'off'): Promise<ScaleRig> {
  const SPAN = spanOf(o);
  const max = Math.max(...o.counts);
  const names = Array.from({ length: max }, (_, i) => `nic${i}`);
  const machine = await Machine.create({
    ramBytes: 16 * MiB,
    timeoutMs: 30000,
    runTokens,
    devices: [{ name: 'acc0', kind: 'accelerator', memBytes: SPAN + 4 * MiB, barBytes: SPAN, props: {} }, ...names.map((name) => ({ name, kind: 'nic', memBytes: LOCAL, barBytes: 0, props: {} }))],
  });
  try {
    await machine.start();
    const kernel = Kernel.boot(machine, { policy: oneSwitch, check: true });
    const mm = kernel.createMm();
    const ex = new BarExporter(kernel, 'acc0', { importers: '*', readOnly: false, requireIommu: false, cpuMappable: false });
    const { va, vma } = await ex.mmap(mm, SPAN / PAGE_SIZE);
    const accMem = machine.device('acc0').shm.mem!;
    const pages = Array.from({ length: SPAN / PAGE_SIZE }, (_, i) => ex.pageOf(vma, i));
    for (const p of pages) accMem.fill(p & 0xff, p * PAGE_SIZE, p * PAGE_SIZE + 8);
    const other = await mm.mmap({ length: PAGE_SIZE, prot: PROT_READ | PROT_WRITE });
    const bound: ImporterBinding[] = [];
    const stream = async (i: number, n: number, args: { untilMs?: number }): Promise<VaStreamResult> => {
      const len = SPAN / n;
      const r = await machine.race(machine.device(names[i]).handle.cmd({ op: 'va-stream', va: va + i * len, len, cmdBytes: CMD, localSpan: Math.min(len, LOCAL), ...args }));
      if (r.errno !== 0) throw new Error(`bench: scale: va-stream on ${names[i]} failed: ${kernel.refusals(names[i]).explain(r.message)}`);
      return r;
    };
    const all = (n: number, args: { untilMs?: number }) => Promise.all(Array.from({ length: n }, (_, i) => stream(i, n, args)));
    return {
      prepare: async (n) => {
        while (bound.length < n) bound.push(await ImporterBinding.bind(kernel, names[bound.length], mm));
        await all(n, {});
        for (let i = 0; i < n; i++) verifySlice(machine, names[i], accMem, pages, (i * SPAN) / n / PAGE_SIZE, Math.min(SPAN / n, LOCAL) / PAGE_SIZE);
      },
      window: async (n) => {
        const r = await all(n, { untilMs: o.streamMs });
        const mbs = r.reduce((s, x) => s + x.bytes, 0) / 1e3 / (Math.max(...r.map((x) => x.t1)) - Math.min(...r.map((x) => x.t0)));
        const acks = await ackWindow(kernel, names.slice(0, n), () => all(n, { untilMs: o.streamMs }), () => mm.revokeRange(other, other + PAGE_SIZE, null));
        return { mbs, p50: quantile(acks, 0.5), p99: quantile(acks, 0.99) };
      },
      finish: async () => {
        const violations = bound.reduce((s, b) => s + b.violations().count, 0);
        if (violations !== 0) throw new Error(`bench: scale: the safety checker saw ${violations} violation(s)`);
        for (const b of bound.splice(0)) await b.close();
        await mm.exit();
      },
      close: () => machine.shutdown(),
    };
  } catch (e) {
    await machine.shutdown();
    throw e;
  }
}

/** Ack latencies (µs) of `devs` for revokes posted while `streams` runs. */
async function ackWindow(kernel: Kernel, devs: readonly string[], streams: () => Promise<unknown>, revoke: () => Promise<void>): Promise<number[]> {
  const before = devs.map((d) => kernel.invalidator(d).stats.ackUs.length);
  let done = false;
  const s = streams().finally(() => (done = true));
  await sleep(5);
  while (!done) {
    await revoke();
    await sleep(1);
  }
  await s;
  const acks = devs.flatMap((d, i) => kernel.invalidator(d).stats.ackUs.slice(before[i]));
  if (acks.length === 0) throw new Error('bench: scale: no invalidation was acked during the window');
  return acks;
}

/** The first `npages` pages of nic `dev`'s local memory must equal the exporter's pages from VMA page `first`. */
function verifySlice(machine: Machine, dev: string, accMem: Uint8Array, pages: readonly number[], first: number, npages: number): void {
  const local = machine.device(dev).shm.mem!;
  for (let i = 0; i < npages; i++) {
    const p = pages[first + i];
    const a = Buffer.from(accMem.buffer, accMem.byteOffset + p * PAGE_SIZE, PAGE_SIZE);
    const b = Buffer.from(local.buffer, local.byteOffset + i * PAGE_SIZE, PAGE_SIZE);
    if (!a.equals(b)) throw new Error(`bench: scale: ${dev} read wrong bytes at page ${first + i} (device page ${p})`);
  }
}

/**
 * A DGX-style tree for n accelerator -> NIC pairs: each switch holds two
 * pairs (4 endpoints, Gen4 x16), switches alternate between two root
 * complexes, each switch on its own Gen4 x16 root port.
 */
export function dgxTopology(n: number): { spec: TopologySpec; pairs: [string, string][] } {
  const link = { gen: 4, width: 16 };
  const switches = Math.ceil(n / 2);
  const rcs = [0, 1].map((r) => ({ name: `rc${r}`, id: '8086:2020', iommu: false, ports: [] as unknown[] }));
  const pairs: [string, string][] = [];
  for (let s = 0; s < switches; s++) {
    const ports: unknown[] = [];
    for (let j = 0; j < 2 && 2 * s + j < n; j++) {
      const i = 2 * s + j;
      pairs.push([`gpu${i}`, `nic${i}`]);
      ports.push({ slot: `${(8 + 2 * j).toString(16).padStart(2, '0')}.0`, link, endpoint: { device: `gpu${i}`, id: '10de:1db4' } });
      ports.push({ slot: `${(9 + 2 * j).toString(16).padStart(2, '0')}.0`, link, endpoint: { device: `nic${i}`, id: '15b3:101b' } });
    }
    rcs[s % 2].ports.push({ slot: `${(1 + (s >> 1)).toString(16).padStart(2, '0')}.0`, link, switch: { id: '10b5:8747', ports } });
  }
  return { spec: TopologySchema.parse({ rootComplexes: rcs.filter((r) => r.ports.length > 0) }), pairs };
}

/** Modeled aggregate (MB/s) of n concurrent 1 GiB streams, P2P and through system RAM. */
export function modeled(n: number): { p2p: number; bounce: number } {
  const { spec, pairs } = dgxTopology(n);
  const fabric = buildFabricUnchecked(spec);
  const bytes = 1024 * MiB;
  const rate = (via: 'p2p' | 'bounce') => {
    const r = fabric.modelFlows(pairs.map(([src, dst], i) => ({ id: `s${i}`, src, dst, bytes, via })));
    return (n * bytes) / 1e6 / r.makespan;
  };
  return { p2p: rate('p2p'), bounce: rate('bounce') };
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
