/**
 * Scenarios with N instances, built in code: the entry point for callers
 * that sweep a count (bench scale rows, tests) rather than load a file.
 * scaledScenario(kind, n) returns the scenario a file would give — the
 * devices of n instances, a generated DGX-style fabric (topology.generate)
 * and the workload with its count set — validated by the same loader
 * (parseScenario), so it runs with runScenario like any shipped one.
 *
 *   kind               instances                       devices
 *   camera-chain       pipelines: n                    cam<i>, cc<i>
 *   accel-nic-stream   streams: n                      acc<i>, nic<i>
 *   nic-nvme-queue     pairs: n                        nic<i>, nvme<i>
 *   hmm-peer           importers: n (one accelerator)  acc0, nic<i>
 */
import { stringify } from 'yaml';
import type { GenerateSpec } from '../hw/topology_gen.js';
import { instanceNames } from '../workloads/instances.js';
import { parseScenario } from './load.js';
import type { Scenario } from './schema.js';

export const SCALED_KINDS = ['camera-chain', 'accel-nic-stream', 'nic-nvme-queue', 'hmm-peer'] as const;
export type ScaledKind = (typeof SCALED_KINDS)[number];

export interface ScaledOptions {
  /** The generated fabric (default: one root complex, 4 devices per leaf switch). */
  readonly generate?: Partial<GenerateSpec>;
  /** Workload keys to set besides the count (frames, results, ios, pages...). */
  readonly workload?: Readonly<Record<string, unknown>>;
  readonly seed?: number;
}

interface Template {
  /** Device rows for n instances. */
  devices(n: number): Record<string, unknown>[];
  /** The workload for n instances (role names as the count wants them). */
  workload(n: number): Record<string, unknown>;
  readonly process: string;
}

/** A role's name in the workload: the device itself for one instance, the prefix for several. */
const role = (prefix: string, n: number) => (n === 1 ? `${prefix}0` : prefix);
const many = (prefix: string, n: number, row: Record<string, unknown>) => (n === 1 ? [`${prefix}0`] : instanceNames(prefix, n)).map((name) => ({ name, ...row }));

const TEMPLATES: Readonly<Record<ScaledKind, Template>> = {
  'camera-chain': {
    process: 'viewer',
    devices: (n) => [...many('cam', n, { kind: 'camera', memory: '256 KiB' }), ...many('cc', n, { kind: 'colour-correction', memory: '4 MiB', bar: '1 MiB' })],
    workload: (n) => ({ kind: 'camera-chain', pipelines: n, camera: role('cam', n), corrector: role('cc', n), output: 'viewer', frames: 8, width: 320, height: 240 }),
  },
  'accel-nic-stream': {
    process: 'streamer',
    devices: (n) => [...many('acc', n, { kind: 'accelerator', memory: '8 MiB', bar: '4 MiB' }), ...many('nic', n, { kind: 'nic', memory: '256 KiB' })],
    workload: (n) => ({ kind: 'accel-nic-stream', streams: n, accelerator: role('acc', n), nic: role('nic', n), process: 'streamer', resultBytes: '1 MiB', results: 8, revokes: 2 }),
  },
  'nic-nvme-queue': {
    process: 'storage',
    devices: (n) => [...many('nic', n, { kind: 'nic', memory: '256 KiB' }), ...many('nvme', n, { kind: 'nvme', memory: '2 MiB', bar: '128 KiB' })],
    workload: (n) => ({ kind: 'nic-nvme-queue', pairs: n, nic: role('nic', n), nvme: role('nvme', n), process: 'storage', ios: 500 }),
  },
  'hmm-peer': {
    process: 'app',
    devices: (n) => [{ name: 'acc0', kind: 'accelerator', memory: '8 MiB', bar: '4 MiB' }, ...many('nic', n, { kind: 'nic', memory: '256 KiB' })],
    workload: (n) => ({ kind: 'hmm-peer', importers: n, accelerator: 'acc0', nic: role('nic', n), process: 'app', pages: 256 }),
  },
};

/** The scenario of `n` instances of `kind` (throws ScenarioError as a file would). */
export function scaledScenario(kind: ScaledKind, n: number, opts: ScaledOptions = {}): Scenario {
  const t = TEMPLATES[kind];
  const raw = {
    name: `scaled-${kind}-${n}`,
    description: `${n} instance(s) of ${kind} on a generated fabric`,
    seed: opts.seed ?? 1,
    machine: { ram: '128 MiB', timeoutMs: 30000 },
    devices: t.devices(n),
    processes: [{ name: t.process }],
    topology: { generate: { rootComplexes: 1, fanout: 4, ...opts.generate } },
    workload: { ...t.workload(n), ...opts.workload },
  };
  return parseScenario(stringify(raw), `scaledScenario(${kind}, ${n})`);
}
