/**
 * `peervma targets FILE...`: issue 11's figures (bench/targets.ts) against
 * one or more `peervma bench --json` files. Each figure shows its value in
 * every run, min / median / max over the runs, and in how many runs it was
 * met: the README's headline table is this output, not numbers copied by
 * hand. Nothing is measured here; exit 2 on a file that is not a bench report.
 */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { z } from 'zod';
import { summarise } from '../../bench/stats.js';
import { describeTarget, figureOf, meets, targetsFor, type Target } from '../../bench/targets.js';
import type { BenchRow } from '../../bench/stats.js';
import { InputError } from '../errors.js';
import { helpText } from './help_text.js';

const BenchJson = z.object({
  machine: z.record(z.string(), z.unknown()),
  rows: z.array(
    z.object({ id: z.string(), unit: z.string(), median: z.number(), min: z.number(), max: z.number(), baseline: z.string().nullable(), ratio: z.number().nullable(), note: z.string().optional() }),
  ),
});

export interface BenchRun {
  readonly file: string;
  readonly machine: Record<string, unknown>;
  readonly rows: readonly BenchRow[];
}

export function readBenchRun(file: string): BenchRun {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new InputError(`targets: cannot read ${file}: ${err.code === 'ENOENT' ? 'no such file (ENOENT)' : err.message}`);
  }
  const parsed = BenchJson.safeParse(raw);
  if (!parsed.success) {
    const first = parsed.error.issues[0];
    throw new InputError(`targets: ${file} is not a \`peervma bench --json\` report: ${first.path.join('.') || '(top)'}: ${first.message}`);
  }
  return { file, ...parsed.data };
}

/** Two decimals for ratios, thousands for rates. */
function fmt(v: number | null): string {
  if (v === null) return '-';
  return Math.abs(v) >= 1000 ? `${Math.round(v / 1000)}k` : v.toFixed(2);
}

export interface FigureLine {
  readonly target: Target;
  readonly values: readonly (number | null)[];
  readonly met: number;
  readonly measured: number;
}

export function evaluate(runs: readonly BenchRun[]): FigureLine[] {
  return targetsFor(runs.map((r) => r.rows)).map((target) => {
    const rows = runs.map((r) => r.rows.find((x) => x.id === target.id));
    const values = rows.map((row) => figureOf(target, row));
    const met = rows.filter((row, i) => row !== undefined && values[i] !== null && meets(target, row, values[i]!)).length;
    return { target, values, met, measured: values.filter((v) => v !== null).length };
  });
}

const PER_RUN_COLUMNS = 3;
/** The longest row id (scenario.camera-chain-iommu.pairs). */
const FIGURE_W = 33;

/** The table, at most 100 columns: per-run values only up to three runs. */
export function formatTargets(runs: readonly BenchRun[], lines: readonly FigureLine[]): string {
  const perRun = runs.length <= PER_RUN_COLUMNS;
  const head = ['figure'.padEnd(FIGURE_W), 'target'.padEnd(16), ...(perRun ? runs.map((_, i) => `run ${i + 1}`.padStart(6)) : []), 'min'.padStart(6), 'median'.padStart(6), 'max'.padStart(6), 'met'.padStart(5)];
  const out = [head.join(' '), '-'.repeat(head.join(' ').length)];
  for (const l of lines) {
    const seen = l.values.filter((v): v is number => v !== null);
    const s = seen.length > 0 ? summarise(seen) : null;
    const cells = [
      l.target.id.padEnd(FIGURE_W),
      describeTarget(l.target).padEnd(16),
      ...(perRun ? l.values.map((v) => fmt(v).padStart(6)) : []),
      fmt(s?.min ?? null).padStart(6),
      fmt(s?.median ?? null).padStart(6),
      fmt(s?.max ?? null).padStart(6),
      (l.measured === 0 ? 'n/a' : `${l.met}/${l.measured}`).padStart(5),
    ];
    out.push(cells.join(' '));
  }
  const every = lines.filter((l) => l.measured > 0 && l.met === l.measured).length;
  const none = lines.filter((l) => l.measured > 0 && l.met === 0).length;
  const measured = lines.filter((l) => l.measured > 0).length;
  out.push('', `${measured} figures measured: met in every run ${every}, in some runs ${measured - every - none}, in none ${none}.`);
  runs.forEach((r, i) => out.push(`run ${i + 1}: ${r.file} (${String(r.machine.suite ?? '?')} suite, ${String(r.machine.date ?? '?')}, load ${loads(r.machine)})`.slice(0, 100)));
  out.push('Ratios are to a baseline measured in the same run; min / median / max are over the runs.');
  return out.join('\n');
}

function loads(m: Record<string, unknown>): string {
  const first = (x: unknown) => (Array.isArray(x) && typeof x[0] === 'number' ? x[0].toFixed(1) : '?');
  return `${first(m.loadAvgAtStart)} -> ${first(m.loadAvgAtEnd)}`;
}

export function registerTargets(program: Command): void {
  program
    .command('targets')
    .description("compare `bench --json` files with issue 11's figures: each run's value, min/median/max, runs met")
    .argument('<files...>', 'bench JSON files (`peervma bench --json FILE`), one per run')
    .addHelpText('after', helpText('Exit codes: 0 table printed (figures met or not), 2 a file is missing or not a bench report.', 'Example: peervma targets run1.json run2.json run3.json'))
    .action((files: string[]) => {
      const runs = files.map(readBenchRun);
      process.stdout.write(formatTargets(runs, evaluate(runs)) + '\n');
    });
}
