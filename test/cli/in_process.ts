// The peervma command run inside the test process: main(argv) of the CLI
// (src/cli/main.ts, compiled) with stdout and stderr captured and the exit code it
// returns, as bin/peervma.mjs would set it. For tests about what the
// command prints and returns; a test about the process itself (the bin
// script, a real exit status) spawns it instead. Saves a Node start and
// the CLI's module loading per call (about a second each on a busy host).
import type { CliResult } from './spawn_cli.js';

export type { CliResult } from './spawn_cli.js';

// Calls must not overlap (stdout is one per process): tests await each.
// main() comes from the compiled CLI that bin/peervma.mjs runs (dist/, built
// by `npm test`), not from src/ through tsx: the same code the spawned
// command runs, without transpiling the CLI's ~100 modules in every file.
const CLI = new URL('../../dist/src/cli/main.js', import.meta.url).href;
const { main } = (await import(CLI)) as { main: (argv: string[]) => Promise<number> };

export async function peervmaIn(...args: string[]): Promise<CliResult> {
  const out: string[] = [];
  const err: string[] = [];
  const wo = process.stdout.write;
  const we = process.stderr.write;
  process.stdout.write = ((s: string | Uint8Array) => (out.push(String(s)), true)) as typeof process.stdout.write;
  process.stderr.write = ((s: string | Uint8Array) => (err.push(String(s)), true)) as typeof process.stderr.write;
  // A subcommand that reports its own error leaves process.exitCode (main returns it): start clean, leave clean.
  process.exitCode = undefined;
  try {
    return { code: await main(args), out: out.join(''), err: err.join('') };
  } finally {
    process.stdout.write = wo;
    process.stderr.write = we;
    process.exitCode = undefined;
  }
}

