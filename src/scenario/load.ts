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
import { scenarioSchema, type Scenario } from './schema.js';

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
  const input = (i as { input?: unknown }).input;
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
  const w = s.workload;
  const wantKind = (role: 'camera' | 'corrector', kind: string) => {
    const idx = names.get(w[role]);
    if (idx === undefined) problems.push(`workload.${role}: got "${w[role]}"; expected the name of a device (${[...names.keys()].join(', ')})`);
    else if (s.devices[idx].kind !== kind) problems.push(`workload.${role}: device "${w[role]}" is a ${s.devices[idx].kind}; expected a ${kind}`);
  };
  wantKind('camera', 'camera');
  wantKind('corrector', 'colour-correction');
  if (!s.processes.some((p) => p.name === w.output)) problems.push(`workload.output: got "${w.output}"; expected the name of a process (${s.processes.map((p) => p.name).join(', ') || 'none declared under processes'})`);
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
