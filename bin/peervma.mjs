#!/usr/bin/env node
// The installed `peervma` command: runs the compiled CLI (npm run build makes it).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const cli = fileURLToPath(new URL('../dist/src/cli/main.js', import.meta.url));
if (!existsSync(cli)) {
  process.stderr.write(`peervma: ${cli} is missing; run 'npm run build' in ${fileURLToPath(new URL('..', import.meta.url))}\n`);
  process.exit(2);
}
const { cli: run } = await import(cli);
process.exitCode = await run(process.argv.slice(2));
