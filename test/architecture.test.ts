// The import rules of docs/ARCHITECTURE.md, checked: no layer imports one above it, no import cycle (type imports included).
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, normalize, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

/**
 * What each layer may import besides itself (docs/ARCHITECTURE.md, "Who
 * may import what"). Layers are folders; src/errors.ts is a layer of its
 * own at the bottom, over the errno list (src/shm/errno.ts, a leaf every
 * layer may use); src/devices/models/ is split out of src/devices/ so the
 * workloads can be kept from it.
 */
const BASE = ['src/shm/errno', 'src/errors', 'src/common'];
const MAY_IMPORT: Readonly<Record<string, readonly string[]>> = {
  'src/shm/errno': [],
  'src/errors': ['src/shm/errno'],
  'src/common': [],
  'src/hw': [...BASE],
  'src/shm': [...BASE],
  'src/devices': [...BASE, 'src/hw', 'src/shm', 'src/devices/models'],
  'src/devices/models': [...BASE, 'src/devices'],
  'src/kernel': [...BASE, 'src/hw', 'src/shm', 'src/devices'],
  workers: [...BASE, 'src/hw', 'src/shm', 'src/devices', 'src/devices/models'],
  'src/drivers': [...BASE, 'src/hw', 'src/shm', 'src/devices', 'src/kernel'],
  // Not src/devices/models: a workload's check must not share code with the device it checks.
  'src/workloads': [...BASE, 'src/hw', 'src/shm', 'src/devices', 'src/kernel', 'src/drivers'],
  // The stress harness drives the kernel and its drivers directly, beside the workloads.
  'src/stress': [...BASE, 'src/hw', 'src/shm', 'src/devices', 'src/kernel', 'src/drivers'],
  'src/scenario': [...BASE, 'src/hw', 'src/shm', 'src/devices', 'src/kernel', 'src/drivers', 'src/workloads'],
  'src/trace': [...BASE, 'src/hw', 'src/shm', 'src/devices', 'src/kernel', 'src/drivers', 'src/workloads', 'src/scenario'],
  // `peervma bench` (src/cli/bench.ts) runs the suites in bench/, so the bench sits below the CLI.
  'src/cli': [...BASE, 'src/hw', 'src/shm', 'src/devices', 'src/kernel', 'src/drivers', 'src/workloads', 'src/stress', 'src/scenario', 'src/trace', 'bench'],
  bench: [...BASE, 'src/hw', 'src/shm', 'src/devices', 'src/kernel', 'src/drivers', 'src/workloads', 'src/stress', 'src/scenario', 'src/trace'],
};

/** The layer of a repository path (no extension needed). */
function layerOf(path: string): string {
  const p = path.split('/');
  if (p[0] !== 'src') return p[0];
  if (p.length === 2) return `src/${p[1].replace(/\.(js|ts)$/, '')}`;
  if (p[1] === 'devices' && p[2] === 'models' && p.length > 3) return 'src/devices/models';
  if (p[1] === 'shm' && /^errno\.(js|ts)$/.test(p[2] ?? '')) return 'src/shm/errno';
  return `src/${p[1]}`;
}

/** Relative module specifiers of a file: static imports, re-exports and import() types. */
function importsOf(source: string): string[] {
  const out: string[] = [];
  for (const m of source.matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)['"](\.[^'"]+)['"]/g)) out.push(m[1]);
  return out;
}

interface Violation {
  readonly file: string;
  readonly imports: string;
  readonly why: string;
}

/** Every import in `files` (repository path -> source) that breaks MAY_IMPORT. */
function violations(files: ReadonlyMap<string, string>): Violation[] {
  const bad: Violation[] = [];
  for (const [file, source] of files) {
    const from = layerOf(file);
    const allowed = MAY_IMPORT[from];
    for (const spec of importsOf(source)) {
      const target = normalize(join(dirname(file), spec)).replaceAll('\\', '/');
      const to = layerOf(target);
      if (to === from) continue;
      if (!allowed) bad.push({ file, imports: target, why: `${from}/ is not a known layer (add it to MAY_IMPORT and docs/ARCHITECTURE.md)` });
      else if (!allowed.includes(to)) bad.push({ file, imports: target, why: `${from}/ may not import ${to}/` });
    }
  }
  return bad;
}

function sourceFiles(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const e of readdirSync(join(ROOT, dir), { withFileTypes: true, recursive: true })) {
    if (!e.isFile() || !e.name.endsWith('.ts')) continue;
    const abs = join(e.parentPath, e.name);
    out.set(relative(ROOT, abs).replaceAll('\\', '/'), readFileSync(abs, 'utf8'));
  }
  return out;
}

/** `madge --circular` over `dirs` of `cwd`: the cycles, each a list of files. */
function madgeCycles(cwd: string, dirs: readonly string[]): string[][] {
  const cli = join(ROOT, 'node_modules', 'madge', 'bin', 'cli.js');
  // Exits 1 when it finds a cycle; the JSON on stdout is the answer either way.
  const r = spawnSync(process.execPath, [cli, '--circular', '--json', '--no-spinner', '--extensions', 'ts', ...dirs], { cwd, encoding: 'utf8', timeout: 60000 });
  if (r.error || (r.status !== 0 && r.status !== 1)) throw new Error(`madge in ${cwd}: ${r.error?.message ?? `exit ${r.status}`}: ${r.stderr}`);
  return JSON.parse(r.stdout) as string[][];
}

t.test('no layer imports a layer above it (src, workers, bench)', async (t) => {
  const files = new Map([...sourceFiles('src'), ...sourceFiles('workers'), ...sourceFiles('bench')]);
  t.ok(files.size > 100, `read ${files.size} source files`);
  const bad = violations(files);
  t.same(bad, [], bad.map((v) => `${v.file} imports ${v.imports}: ${v.why}`).join('\n') || 'no upward import');
});

t.test('the rule check catches an upward import', async (t) => {
  const fake = new Map([
    ['workers/camera.ts', "import { renderPattern } from '../src/workloads/camera_chain/frame_pattern.js';"],
    ['src/devices/device_kinds.ts', "import type { X } from '../workloads/camera_chain/colour.js';"],
    ['src/workloads/camera_chain/verify_task.ts', "const v: import('../../devices/models/frame_pattern.js').T = 1;"],
    ['src/kernel/mm.ts', "import { Vma } from './vma.js';\nimport { PAGE_SIZE } from '../shm/constants.js';"],
  ]);
  t.same(
    violations(fake).map((v) => `${v.file} -> ${v.imports}`),
    ['workers/camera.ts -> src/workloads/camera_chain/frame_pattern.js', 'src/devices/device_kinds.ts -> src/workloads/camera_chain/colour.js', 'src/workloads/camera_chain/verify_task.ts -> src/devices/models/frame_pattern.js'],
    'workers -> workloads, devices -> workloads (type import), workloads -> device models (import type); same-layer and downward imports pass',
  );
});

t.test('no import cycle in src and workers (type imports included)', async (t) => {
  const cycles = madgeCycles(ROOT, ['src', 'workers']);
  t.same(cycles, [], cycles.map((c) => c.join(' -> ')).join('\n') || 'no cycle');
});

t.test('the cycle check sees a cycle made only of type imports', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'peervma-cycle-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'a.ts'), "import type { B } from './b.js';\nexport interface A { b: B }\n");
  writeFileSync(join(dir, 'b.ts'), "import type { A } from './a.js';\nexport interface B { a: A }\n");
  t.same(madgeCycles(dir, ['.']), [['a.ts', 'b.ts']]);
});
