/**
 * Where compiled worker code lives. Device workers and piscina tasks always
 * start from compiled JavaScript under dist/ (a TypeScript worker through
 * tsx costs 5-8x the start-up CPU, and execArgv tsx loading fails for
 * workers on Node 20), whether the caller runs compiled or through tsx.
 */
import { existsSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const here = fileURLToPath(import.meta.url);
/** Package root: this file is src/devices/worker_entry.{ts,js}, possibly under dist/. */
const root = fileURLToPath(new URL(here.includes('/dist/') ? '../../../' : '../../', import.meta.url));

/**
 * Options every worker (device or piscina task) starts with. execArgv is
 * empty on purpose: by default a worker inherits the parent's --import
 * loaders, and under `tap` those are tap's TypeScript, mock and
 * process-info hooks, which made each worker cost ~3x its own start-up
 * CPU (a 200x150 camera-chain run: 3.4 s of CPU instead of 1.0 s). The
 * workers run compiled JavaScript and need no loader. The one exception
 * is profiling: `node --cpu-prof[-dir=D] ...` passes its `--cpu-prof*`
 * flags on (in `=` form), so every device worker writes its own profile
 * beside the kernel's instead of none.
 */
export const WORKER_EXEC_ARGV: string[] = process.execArgv.filter((a) => /^--cpu-prof($|-[a-z]+=)/.test(a));

/**
 * Absolute path of a compiled module, given its path relative to the
 * package root without extension. When `npm run build` also bundled it
 * (`<rel>.bundle.js`, one file holding the module and everything it
 * imports: a worker loads one module instead of its whole graph), the
 * bundle is used — only if it is at least as new as the compiled module,
 * so a build by tsc alone never starts a stale bundle.
 */
export function compiledModule(rel: string): string {
  const p = `${root}dist/${rel}.js`;
  if (!existsSync(p)) throw new Error(`compiled module ${p} is missing: run 'npm run build' first`);
  const b = `${root}dist/${rel}.bundle.js`;
  if (existsSync(b) && statSync(b).mtimeMs >= statSync(p).mtimeMs) return b;
  return p;
}
