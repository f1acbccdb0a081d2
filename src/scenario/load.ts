/**
 * Loads a scenario file: YAML syntax, then the schema, then the
 * cross-references the schema cannot see (device names, kinds and their
 * property tables, the workload's devices and processes). Every problem is
 * collected and reported together as a ScenarioError naming the file, the
 * key path, the bad value and what was expected; nothing starts.
 */
import { readFile } from 'node:fs/promises';
import { parseDocument } from 'yaml';
import type { z } from 'zod';
import { ScenarioError } from '../errors.js';
import { deviceKinds } from '../devices/device_kinds.js';
import { scenarioSchema, type Scenario, type Workload } from './schema.js';
import { workloadDef } from '../workloads/registry.js';
import { buildFabric, TopologyError } from '../hw/topology.js';

type Issue = z.core.$ZodIssue;

function keyPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const k of path) out += typeof k === 'number' ? `[${k}]` : out ? `.${String(k)}` : String(k);
  return out || '(top level)';
}

function show(v: unknown): string {
  if (v === undefined) return 'nothing';
  const s = JSON.stringify(v);
  return s.length > 60 ? s.slice(0, 57) + '...' : s;
}

function describeIssue(i: Issue, prefix: readonly PropertyKey[] = []): string {
  const path = keyPath([...prefix, ...i.path]);
  if (i.code === 'unrecognized_keys') return `${path}: unknown key${i.keys.length > 1 ? 's' : ''} ${i.keys.map((k) => `'${k}'`).join(', ')}`;
  // A refinement across keys reports the whole object as its input: the message names the values.
  const input = (i as { input?: unknown }).input;
  if (i.code === 'custom' && typeof input === 'object' && input !== null) return `${path}: ${i.message}`;
  return `${path}: got ${show(input)}; ${i.message.replace(/^Invalid input: /, '')}`;
}

/** Checks what the schema cannot: names unique and resolvable, props valid for the kind. */
function crossCheck(s: Scenario): string[] {
  const problems: string[] = [];
  const names = new Map<string, number>();
  s.devices.forEach((d, i) => {
    if (names.has(d.name)) problems.push(`devices[${i}].name: got "${d.name}"; already used by devices[${names.get(d.name)}]`);
    names.set(d.name, i);
    const kind = deviceKinds[d.kind];
    if (!kind) {
      problems.push(`devices[${i}].kind: got "${d.kind}"; expected one of ${Object.keys(deviceKinds).map((k) => `"${k}"`).join('|')}`);
      return;
    }
    if (d.memory < kind.minMemBytes) problems.push(`devices[${i}].memory: got ${d.memory}; a ${d.kind} needs at least ${kind.minMemBytes} bytes of local memory`);
    if (d.bar > d.memory) problems.push(`devices[${i}].bar: got ${d.bar}; the BAR window cannot be larger than the device memory (${d.memory})`);
    const p = kind.props.safeParse(d.props, { reportInput: true });
    if (p.success) d.props = p.data;
    else for (const iss of p.error.issues) problems.push(describeIssue(iss, ['devices', i, 'props']));
  });
  if (s.workload) problems.push(...workloadProblems(s, s.workload, names));
  try {
    buildFabric(s.topology, s.devices.map((d) => d.name), s.seed);
  } catch (e) {
    if (!(e instanceof TopologyError)) throw e;
    problems.push(...e.message.split('\n'));
  }
  return problems;
}

/** Each role names a device of a kind that can play it; each process is declared. */
function workloadProblems(s: Scenario, w: Workload, names: ReadonlyMap<string, number>): string[] {
  const problems: string[] = [];
  const def = workloadDef(w);
  for (const r of def.roles(w)) {
    const idx = names.get(r.device);
    if (idx === undefined) problems.push(`workload.${r.key}: got "${r.device}"; expected the name of a device (${[...names.keys()].join(', ')})`);
    else if (!r.kinds.includes(s.devices[idx].kind)) problems.push(`workload.${r.key}: device "${r.device}" is a ${s.devices[idx].kind}; expected a ${r.kinds.join(' or a ')}`);
  }
  problems.push(...(def.validate?.(w, s.devices) ?? []));
  for (const p of def.processes(w)) {
    if (!s.processes.some((q) => q.name === p.name)) problems.push(`workload.${p.key}: got "${p.name}"; expected the name of a process (${s.processes.map((q) => q.name).join(', ') || 'none declared under processes'})`);
  }
  return problems;
}

/** Parses and validates scenario text; `file` is only used in messages. */
export function parseScenario(text: string, file: string): Scenario {
  const doc = parseDocument(text, { prettyErrors: true });
  if (doc.errors.length > 0) {
    throw new ScenarioError(file, doc.errors.map((e) => `line ${e.linePos?.[0].line ?? '?'}, column ${e.linePos?.[0].col ?? '?'}: YAML syntax error: ${e.message.split('\n')[0].replace(/ at line \d+, column \d+:?$/, '')}`));
  }
  const parsed = scenarioSchema.safeParse(doc.toJS(), { reportInput: true });
  if (!parsed.success) throw new ScenarioError(file, parsed.error.issues.map((i) => describeIssue(i)));
  const problems = crossCheck(parsed.data);
  if (problems.length > 0) throw new ScenarioError(file, problems);
  return parsed.data;
}

export async function loadScenarioFile(path: string): Promise<Scenario> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new ScenarioError(path, [`cannot read the file: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`]);
  }
  return parseScenario(text, path);
}
