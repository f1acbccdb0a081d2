/**
 * `topology: { generate: { ... } }`: the scenario asks for a generated
 * fabric (src/hw/topology_gen.ts) instead of writing one out. The loader
 * takes the key out of the raw file before the schema walks it (so a
 * written topology keeps its own messages), checks it with its own schema,
 * and after the devices and the workload are known puts the generated
 * spec in its place: from then on the scenario reads as if the file had
 * written that topology (`peervma topo` prints it).
 */
import { affinityGroups, generateTopology, GenerateSpecSchema, type GenerateSpec } from '../hw/topology_gen.js';
import { workloadDef } from '../workloads/registry.js';
import type { Scenario } from './schema.js';

export interface TakenGenerate {
  /** The raw scenario without its `topology:` key when that key was a `generate:` one. */
  readonly raw: unknown;
  readonly spec: GenerateSpec | null;
  readonly problems: string[];
}

function isRecord(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

/** Takes `topology.generate` out of a raw scenario; problems name `topology.generate.<key>`. */
export function takeGenerate(raw: unknown): TakenGenerate {
  if (!isRecord(raw) || !isRecord(raw.topology) || !('generate' in raw.topology)) return { raw, spec: null, problems: [] };
  const { topology, ...rest } = raw;
  const extra = Object.keys(topology).filter((k) => k !== 'generate');
  const problems = extra.length > 0 ? [`topology: unknown key${extra.length > 1 ? 's' : ''} ${extra.map((k) => `'${k}'`).join(', ')} beside 'generate' (a generated topology is described by topology.generate only)`] : [];
  const r = GenerateSpecSchema.safeParse(topology.generate ?? {});
  if (!r.success) for (const i of r.error.issues) problems.push(`topology.generate${i.path.map((k) => `.${String(k)}`).join('')}: ${i.message}`);
  return { raw: rest, spec: r.success ? r.data : null, problems };
}

/** The scenario with its generated topology: devices that talk to each other in the workload are placed together. */
export function withGeneratedTopology(s: Scenario, g: GenerateSpec): Scenario {
  const devices = s.devices.map((d) => d.name);
  const pairs = s.workload ? workloadDef(s.workload).p2pPairs(s.workload) : [];
  return { ...s, topology: generateTopology(g, affinityGroups(devices, pairs)) };
}
