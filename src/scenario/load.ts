/**
 * Loads a scenario file: YAML syntax, then the sizes that must be checked
 * before the schema walks the input (device count), then the schema, then
 * the cross-references the schema cannot see (device names, kinds and
 * their property tables, the workload's devices and processes). Every problem is collected and
 * reported together as a ScenarioError naming the file, the key path the
 * user wrote, the bad value and what was expected; nothing starts.
 *
 * Command-line overrides (--seed, --frames, --mode) go through the same
 * checks (prepareRun, which every run calls): one validation path, the
 * same limits and messages, the flag named beside the key it overrides.
 */
import { parseDocument } from 'yaml';
import type { z } from 'zod';
import { ScenarioError } from '../errors.js';
import { deviceKinds } from '../devices/device_kinds.js';
import { MAX_DEVICE_WORKERS } from '../devices/limits.js';
import { scenarioSchema, type Scenario, type Workload } from './schema.js';
import { workloadSchema } from '../workloads/schema.js';
import { workloadDef } from '../workloads/registry.js';
import { buildFabric, TopologyError } from '../hw/topology.js';
import type { Mode } from '../workloads/workload.js';
import { readInputFile } from './input_file.js';
import { takeGenerate, withGeneratedTopology } from './generated_topology.js';
import { expandDeviceGroups } from './device_groups.js';

/** Where each loaded scenario came from, for the messages of checks made after loading. */
const sources = new WeakMap<Scenario, string>();

/** The file a scenario was loaded from (or the name given to parseScenario). */
export function scenarioSource(sc: Scenario): string {
  return sources.get(sc) ?? `scenario ${sc.name}`;
}

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
  // A refinement across keys reports the whole object as its input: the message names the values.
  const input = (i as { input?: unknown }).input;
  if (i.code === 'invalid_union' && 'discriminator' in i && typeof input === 'object' && input !== null) {
    // A union keyed by `kind`: name the key and the choices, not the whole object.
    const options = (i as { options?: readonly unknown[] }).options ?? [];
    return `${path}: got ${show((input as Record<string, unknown>)[i.discriminator as string])}; expected one of ${options.map((o) => JSON.stringify(o)).join('|')}`;
  }
  if (i.code === 'unrecognized_keys') return `${path}: unknown key${i.keys.length > 1 ? 's' : ''} ${i.keys.map((k) => `'${k}'`).join(', ')}`;
  if (i.code === 'custom' && typeof input === 'object' && input !== null) return `${path}: ${i.message}`;
  return `${path}: got ${show(input)}; ${i.message.replace(/^Invalid input: /, '')}`;
}

/**
 * Checks the schema cannot walk safely: a list so long that validating it
 * item by item would only bury the one problem that matters.
 */
function checkShape(raw: unknown): string[] {
  const devices = typeof raw === 'object' && raw !== null ? (raw as { devices?: unknown }).devices : undefined;
  if (Array.isArray(devices) && devices.length > MAX_DEVICE_WORKERS) return [`devices: got ${devices.length} devices; at most ${MAX_DEVICE_WORKERS} in a scenario file (how many this host runs follows from its memory)`];
  return [];
}

/** Checks what the schema cannot: names unique and resolvable, props valid for the kind. */
function crossCheck(s: Scenario): string[] {
  const problems: string[] = [];
  const names = new Map<string, number>();
  let duplicates = false;
  s.devices.forEach((d, i) => {
    if (names.has(d.name)) {
      problems.push(`devices[${i}].name: got "${d.name}"; already used by devices[${names.get(d.name)}] (device names must be unique)`);
      duplicates = true;
      return;
    }
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
  // With two devices of one name, every check that looks a device up by name
  // (roles, the generated topology) would report follow-on errors about
  // things the user never wrote: the duplicate is the one problem.
  if (duplicates) return problems;
  try {
    buildFabric(s.topology, s.devices.map((d) => d.name), s.seed);
  } catch (e) {
    if (!(e instanceof TopologyError)) throw e;
    problems.push(...e.message.split('\n'));
  }
  if (s.workload) problems.push(...workloadProblems(s, s.workload, names));
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

/**
 * In p2p mode every provider exports its memory through its BAR: a
 * provider without one would fail at run time (ENODEV). Pairs the topology
 * refuses are left to the mode decision (refused or bounced, with reasons).
 */
function exportProblems(s: Scenario): string[] {
  const w = s.workload;
  if (!w || w.mode !== 'p2p') return [];
  const fabric = buildFabric(s.topology, s.devices.map((d) => d.name), s.seed);
  const problems: string[] = [];
  for (const [provider, client] of workloadDef(w).p2pPairs(w)) {
    const i = s.devices.findIndex((d) => d.name === provider);
    const d = s.devices[i];
    if (d.bar > 0 && d.memory > 0) continue;
    if (fabric.mapType(provider, client).map === 'not-supported') continue;
    const key = d.bar === 0 ? 'bar' : 'memory';
    problems.push(`devices[${i}].${key}: got 0; ${provider} exports its memory to ${client} in p2p mode, through a BAR window onto its memory (give it one, or run in bounce mode)`);
  }
  return problems;
}

/** Schema, then cross-checks; `source` names the file in messages. */
function validate(input: unknown, source: string): Scenario {
  const groups = expandDeviceGroups(input);
  if (groups.problems.length > 0) throw new ScenarioError(source, groups.problems);
  const shape = checkShape(groups.raw);
  if (shape.length > 0) throw new ScenarioError(source, shape);
  const gen = takeGenerate(groups.raw);
  const parsed = scenarioSchema.safeParse(gen.raw, { reportInput: true });
  if (!parsed.success || gen.problems.length > 0) throw new ScenarioError(source, [...gen.problems, ...(parsed.error?.issues.map((i) => describeIssue(i)) ?? [])].map(groups.mapMessage));
  const sc = gen.spec ? generated(parsed.data, gen.spec, source) : parsed.data;
  const problems = crossCheck(sc).map(groups.mapMessage);
  if (problems.length > 0) throw new ScenarioError(source, problems);
  sources.set(sc, source);
  return sc;
}

/** The scenario with its generated topology (src/scenario/generated_topology.ts); a fabric too big to generate is the file's fault. */
function generated(sc: Scenario, spec: Parameters<typeof withGeneratedTopology>[1], source: string): Scenario {
  try {
    return withGeneratedTopology(sc, spec);
  } catch (e) {
    throw new ScenarioError(source, [e instanceof Error ? e.message : String(e)]);
  }
}

/** Parses and validates scenario text; `file` is only used in messages. */
export function parseScenario(text: string, file: string): Scenario {
  const doc = parseDocument(text, { prettyErrors: true });
  if (doc.errors.length > 0) {
    throw new ScenarioError(file, doc.errors.map((e) => `line ${e.linePos?.[0].line ?? '?'}, column ${e.linePos?.[0].col ?? '?'}: YAML syntax error: ${e.message.split('\n')[0].replace(/ at line \d+, column \d+:?$/, '')}`));
  }
  return validate(doc.toJS(), file);
}

export async function loadScenarioFile(path: string): Promise<Scenario> {
  return parseScenario(await readInputFile(path, 'scenario file'), path);
}

/** What the command line (or an API caller) may override in a loaded scenario. */
export interface Overrides {
  readonly seed?: number;
  /** The workload's size knob (frames, requests, iterations...). */
  readonly frames?: number;
  readonly mode?: Mode;
}

/**
 * The scenario a run will execute: the overrides applied and checked
 * exactly as if the file had said so (the same schema limits and
 * cross-checks), then what only a run needs (a BAR on every p2p exporter,
 * which depends on the mode a flag may change). A refused value is a
 * ScenarioError naming the flag beside the key it overrides
 * ("--frames (workload.frames): got 1000000000; Too big: ...").
 */
export function prepareRun(sc: Scenario, o: Overrides): Scenario {
  const source = scenarioSource(sc);
  const next = applyOverrides(sc, o, source);
  const problems = exportProblems(next);
  if (problems.length > 0) throw new ScenarioError(source, problems);
  return next;
}

function applyOverrides(sc: Scenario, o: Overrides, source: string): Scenario {
  if (o.seed === undefined && o.frames === undefined && o.mode === undefined) return sc;
  const problems: string[] = [];
  let seed = sc.seed;
  if (o.seed !== undefined) {
    const r = scenarioSchema.shape.seed.safeParse(o.seed, { reportInput: true });
    if (r.success) seed = r.data;
    else problems.push(...r.error.issues.map((i) => describeIssue(i, ['--seed (seed)'])));
  }
  let workload = sc.workload;
  if (workload && (o.frames !== undefined || o.mode !== undefined)) {
    const scaled: Workload = o.frames === undefined ? workload : workloadDef(workload).scale(workload, o.frames);
    const raw = o.mode === undefined ? scaled : { ...scaled, mode: o.mode };
    const r = workloadSchema.safeParse(raw, { reportInput: true });
    if (r.success) workload = r.data;
    else
      for (const i of r.error.issues) {
        const key = String(i.path[0]);
        const flag = key === 'mode' ? '--mode' : '--frames';
        problems.push(describeIssue({ ...i, path: i.path.slice(1) }, [`${flag} (workload.${key})`]));
      }
  } else if (!workload && o.frames !== undefined) {
    problems.push('--frames: this scenario has no workload to size (a topology-only scenario: try `peervma topo`)');
  }
  if (problems.length > 0) throw new ScenarioError(source, problems);
  const next: Scenario = { ...sc, seed, workload };
  const cross = crossCheck(next);
  if (cross.length > 0) throw new ScenarioError(source, cross);
  sources.set(next, source);
  return next;
}
