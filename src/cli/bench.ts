/**
 * `peervma bench [--suite quick|full] [--json FILE] [--only sections]`:
 * measures the machine's copy speed and the emulator's figures in one
 * process run and prints them as ratios (bench/suite.ts). Exit 1 when a
 * data or safety check fails during the bench.
 */
import { writeFileSync } from 'node:fs';
import { InvalidArgumentError, type Command } from 'commander';
import { formatTable, runSuite, SECTIONS, type Section } from '../../bench/suite.js';

interface BenchFlags {
  suite: 'quick' | 'full';
  json?: string;
  only?: Section[];
}

function sections(v: string): Section[] {
  const out = v.split(',').map((x) => x.trim());
  const bad = out.filter((x) => !(SECTIONS as readonly string[]).includes(x));
  if (bad.length > 0) throw new InvalidArgumentError(`--only takes sections of ${SECTIONS.join(', ')}; unknown: ${bad.join(', ')}`);
  return out as Section[];
}

export function registerBench(program: Command): void {
  program
    .command('bench')
    .description('measure copy baselines and the emulator (data path, invalidation, boot, every scenario) as ratios in one run')
    .option('--suite <name>', 'quick (under 3 minutes on 2 cores) or full', (v: string) => {
      if (v !== 'quick' && v !== 'full') throw new InvalidArgumentError(`--suite must be quick or full, got '${v}'`);
      return v;
    }, 'quick')
    .option('--json <file>', 'also write { machine, rows: [{ id, unit, median, min, max, baseline, ratio }] } to FILE')
    .option('--only <sections>', `comma-separated subset of ${SECTIONS.join(', ')}`, sections)
    .action(async (flags: BenchFlags) => {
      const report = await runSuite(flags.suite, flags.only, (m) => process.stderr.write(m + '\n'));
      process.stdout.write(formatTable(report) + '\n');
      if (flags.json) {
        writeFileSync(flags.json, JSON.stringify(report, null, 2) + '\n');
        process.stdout.write(`json: ${flags.json}\n`);
      }
    });
}
