/*
 * The fabric under load: N concurrent streams priced together by the
 * bandwidth model (bandwidth.ts, max-min fair over every link direction,
 * each root complex's fabric and RAM), once peer to peer and once bounced
 * through system RAM, as modeled aggregate bytes per second.
 *
 * What it shows (DESIGN.md section 7, issue 15 item 4): P2P between two
 * devices under one switch crosses only their own downstream links, so N
 * such streams scale with N; a bounce crosses the switch uplink up and
 * down, the root complex twice and system RAM twice, which all N streams
 * share, so it stops scaling at the first of those to fill.
 *
 * The reference box (gpuBox): `gpus` GPU-like devices, `fanout` per leaf
 * switch, leaf switches under one root complex (topology_gen.ts); each GPU
 * streams to its neighbour on the same leaf (gpu0 <-> gpu1, gpu2 <-> gpu3,
 * ...), every stream the same size, all started at t = 0.
 *
 * Mirrors: nothing in the kernel (the hardware side of the model).
 */
import { Fabric } from './fabric.js';
import { buildPciTree } from './pci_tree.js';
import { generateTopology, GenerateSpecSchema } from './topology_gen.js';
import type { z } from 'zod';

export interface LoadFigure {
  readonly streams: number;
  readonly via: 'p2p' | 'bounce';
  /** Modeled aggregate: every stream's bytes / the makespan, bytes/s. */
  readonly aggregate: number;
  /** The resource the model found busiest (label), and its utilisation 0..1. */
  readonly bottleneck: string;
  readonly utilisation: number;
}

/** Prices `pairs` (src -> dst, `bytes` each, all at t = 0) on `fabric`, all p2p or all bounced. */
export function aggregateUnderLoad(fabric: Fabric, pairs: readonly (readonly [string, string])[], via: 'p2p' | 'bounce', bytes = 64 * 1024 * 1024): LoadFigure {
  const r = fabric.modelFlows(pairs.map(([src, dst], i) => ({ id: `s${i}`, src, dst, bytes, via })));
  const busiest = [...r.resources].sort((a, b) => b.utilisation - a.utilisation)[0];
  return { streams: pairs.length, via, aggregate: r.makespan > 0 ? (pairs.length * bytes) / r.makespan : 0, bottleneck: busiest?.label ?? busiest?.id ?? '-', utilisation: busiest?.utilisation ?? 0 };
}

/** The GPU box: its fabric, and the neighbour pairs of its first `streams` GPUs. */
export function gpuBox(opts: { gpus: number; fanout: number; generate?: Partial<z.input<typeof GenerateSpecSchema>> }): { fabric: Fabric; names: string[] } {
  const names = Array.from({ length: opts.gpus }, (_, i) => `gpu${i}`);
  const pairs: [string, string][] = [];
  for (let i = 0; i + 1 < names.length; i += 2) pairs.push([names[i], names[i + 1]]);
  const spec = generateTopology(GenerateSpecSchema.parse({ rootComplexes: 1, fanout: opts.fanout, ...opts.generate }), pairs);
  return { fabric: new Fabric(buildPciTree(spec, names), 0), names };
}

/** Neighbour streams on the box: gpu0 -> gpu1, gpu1 -> gpu0, gpu2 -> gpu3, ... (the first n). */
export function neighbourStreams(names: readonly string[], n: number): [string, string][] {
  return names.slice(0, n).map((g, i): [string, string] => [g, names[i ^ 1]]);
}

/** The figure of issue 15: p2p and bounce aggregate for n streams on the box, and their ratio. */
export function p2pVsBounce(fabric: Fabric, names: readonly string[], n: number): { p2p: LoadFigure; bounce: LoadFigure; ratio: number } {
  const pairs = neighbourStreams(names, n);
  const p2p = aggregateUnderLoad(fabric, pairs, 'p2p');
  const bounce = aggregateUnderLoad(fabric, pairs, 'bounce');
  return { p2p, bounce, ratio: p2p.aggregate / bounce.aggregate };
}
