// The peervma command in its own process, for tests about the process
// itself (the bin script, a real exit status, stderr that is a pipe).
// test/cli/in_process.ts runs the same command inside the test process.
import { spawn } from 'node:child_process';

export interface CliResult {
  readonly code: number;
  readonly out: string;
  readonly err: string;
}

/**
 * The real command in its own process (bin/peervma.mjs, without the loaders
 * tap puts in NODE_OPTIONS): for tests about the process itself. Resolves
 * when it exits; start it early and await it where the test needs it, so it
 * runs while the in-process tests do.
 */
export function spawnPeervma(...args: string[]): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['bin/peervma.mjs', ...args], { env: { ...process.env, NODE_OPTIONS: '' }, timeout: 120_000 });
    let out = '';
    let err = '';
    p.stdout.setEncoding('utf8').on('data', (s: string) => (out += s));
    p.stderr.setEncoding('utf8').on('data', (s: string) => (err += s));
    p.on('error', reject);
    p.on('close', (code, signal) => resolve({ code: code ?? (signal ? 128 : 1), out, err: signal ? `${err}(killed by ${signal})` : err }));
  });
}
