/*
 * `peervma stress`: seeded concurrent-invalidation stress runs (src/stress/*).
 *
 *   peervma stress [--seed N | --seeds A..B] [--ops N | --duration S] [--importers K]
 *                  [--iommu on|off] [--inject rogue|late|crash|hang] [--shard I/N] [--json]
 *                  [--trace FILE] [--report FILE]
 *   peervma stress merge FILES... [--json]
 *
 * Exit codes: 0 no violation; 1 at least one violation (or a run failed);
 * 2 bad flags or files; 130 / 143 interrupted (src/cli/interrupt.ts). A sweep prints one line per seed (a progress bar on
 * stderr when it is a terminal and --json is off); --shard writes JSON.
 * --report writes the per-seed table and ack latency chart as one HTML
 * page (src/trace/report_stress_html.ts).
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import cliProgress from 'cli-progress';
import { TraceRecorder, traceViewerHint } from '../trace/recorder.js';
import { writeStressReport } from '../trace/report_stress_html.js';
import { assertOutputs } from './output_file.js';
import { setOutputFiles, setPhase } from './interrupt.js';
import { helpText } from './help_text.js';
import { terminalColumns } from '../trace/text_layout.js';
import { formatKinds, formatRun, formatRunLine, type InjectKind, type StressReport } from '../stress/report.js';
import { runStress, type StressOptions } from '../stress/run.js';
import { inSeedOrder, mergeFiles, MergeError, runSweep, seedsOfShard, totalsOf, type SweepFile, type SweepTotals } from '../stress/sweep.js';

interface StressFlags {
  seed?: number;
  seeds?: [number, number];
  ops: number;
  duration?: number;
  importers: number;
  iommu: 'on' | 'off';
  inject?: InjectKind;
  shard?: { index: number; count: number };
  json?: boolean;
  jobs: number;
  gapUs: number;
  ackTimeoutMs: number;
  slow: 'on' | 'off';
  trace?: string;
  report?: string;
}

function report(f: StressFlags, reports: readonly StressReport[]): void {
  if (!f.report) return;
  const cmd = `--ops ${f.ops}${f.duration ? ` --duration ${f.duration}` : ''} --importers ${f.importers} --iommu ${f.iommu}${f.inject ? ` --inject ${f.inject}` : ''} --gap-us ${f.gapUs} --slow ${f.slow}`;
  writeStressReport(f.report, reports, [`${new Date().toISOString()}; ${cmd}`]);
  process.stderr.write(`peervma: report written to ${f.report}\n`);
}

function int(name: string, min: number, max = Number.MAX_SAFE_INTEGER) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min || n > max) throw new InvalidArgumentError(`${name} must be an integer in ${min}..${max}, got '${v}'`);
    return n;
  };
}

function seedRange(v: string): [number, number] {
  const m = /^(\d+)\.\.(\d+)$/.exec(v);
  if (!m || Number(m[1]) > Number(m[2])) throw new InvalidArgumentError(`--seeds takes A..B with A <= B (e.g. 1..100), got '${v}'`);
  return [Number(m[1]), Number(m[2])];
}

function shardArg(v: string): { index: number; count: number } {
  const m = /^(\d+)\/(\d+)$/.exec(v);
  if (!m || Number(m[2]) < 1 || Number(m[1]) >= Number(m[2])) throw new InvalidArgumentError(`--shard takes I/N with 0 <= I < N (e.g. $JOB_COMPLETION_INDEX/8), got '${v}'`);
  return { index: Number(m[1]), count: Number(m[2]) };
}

function formatTotals(t: SweepTotals): string {
  const inj = Object.entries(t.injected).map(([k, o]) => `  injected ${k}: ${Object.entries(o).map(([x, n]) => `${x} ${n}`).join(', ')}`);
  return [`${t.seeds} seed(s): ops ${t.ops}, invalidations ${t.invalidations} (${t.ranges} ranges), violations ${t.violations}${t.violations > 0 ? ` (${formatKinds(t.violationKinds)})` : ''} in ${t.seedsWithViolations} seed(s), IOMMU faults ${t.iommuFaults}; ack p50 ${t.ackP50Us.toFixed(1)} us, worst p99 ${t.ackP99Us.toFixed(1)} us, max ${t.ackMaxUs.toFixed(1)} us`, ...inj].join('\n');
}

function usage(message: string): void {
  process.stderr.write(`peervma stress: ${message}\n`);
  process.exitCode = 2;
}

async function stressCommand(f: StressFlags): Promise<void> {
  if (f.seed !== undefined && f.seeds) return usage('give --seed N or --seeds A..B, not both');
  if (f.shard && !f.seeds) return usage('--shard I/N slices a sweep: give --seeds A..B');
  const base: Omit<StressOptions, 'seed'> = { ops: f.ops, durationS: f.duration, importers: f.importers, iommu: f.iommu === 'on', inject: f.inject, ackTimeoutMs: f.ackTimeoutMs, gapMaxUs: f.gapUs, slow: f.slow === 'on' };
  if (f.trace && f.seeds) return usage('--trace records one run: give --seed N');
  assertOutputs({ '--trace': f.trace, '--report': f.report });
  setOutputFiles([f.trace, f.report]);
  if (!f.seeds) {
    setPhase(`stress seed ${f.seed ?? 1}`);
    const rec = f.trace ? new TraceRecorder() : undefined;
    const r = await runStress({ ...base, seed: f.seed ?? 1, recorder: rec, trace: rec && ((ev) => rec.stressEvent(ev)) });
    if (rec && f.trace) {
      rec.write(f.trace);
      process.stderr.write(`peervma: trace: ${rec.events.length} events written to ${f.trace}; ${traceViewerHint(f.trace)}\n`);
    }
    report(f, [r]);
    process.stdout.write((f.json ? JSON.stringify({ kind: 'peervma-stress', shard: null, seeds: [r], totals: totalsOf([r]) } satisfies SweepFile, null, 2) : formatRun(r, terminalColumns())) + '\n');
    process.exitCode = r.exitCode;
    return;
  }
  const seeds = seedsOfShard(f.seeds[0], f.seeds[1], f.shard ?? null);
  const json = f.json || f.shard !== undefined;
  const bar = !json && process.stderr.isTTY ? new cliProgress.SingleBar({ format: 'stress {bar} {value}/{total} seeds | violations {violations}', stream: process.stderr, hideCursor: true }, cliProgress.Presets.shades_classic) : null;
  let violations = 0;
  let done = 0;
  const sweepPhase = (n: number): void => setPhase(`stress sweep (${n} of ${seeds.length} seeds done; each seed's machine runs in a pool thread, ended with the process)`);
  sweepPhase(0);
  bar?.start(seeds.length, 0, { violations });
  const printLine = inSeedOrder(seeds, (r) => process.stdout.write(formatRunLine(r) + '\n'));
  let reports: StressReport[];
  try {
    reports = await runSweep(seeds, base, f.jobs, (r) => {
      violations += r.violationCount;
      sweepPhase(++done);
      if (bar) bar.increment(1, { violations });
      else if (!json) printLine(r);
    });
  } finally {
    bar?.stop();
  }
  report(f, reports);
  const totals = totalsOf(reports);
  if (json) process.stdout.write(JSON.stringify({ kind: 'peervma-stress', shard: f.shard ?? null, seeds: reports, totals } satisfies SweepFile, null, 2) + '\n');
  else {
    if (bar) process.stdout.write(reports.map(formatRunLine).join('\n') + '\n');
    process.stdout.write(formatTotals(totals) + '\n');
  }
  process.exitCode = reports.some((r) => r.exitCode !== 0) ? 1 : 0;
}

export function registerStress(program: Command): void {
  const cmd = program
    .command('stress')
    .description('concurrent-invalidation stress: importers stream reads and writes through P2P (BAR) and HMM mappings while the kernel revokes, recycles, migrates, munmaps, mprotects and flushes under them at seeded random points; every access is checked')
    .option('--seed <n>', 'seed of one run (default 1)', int('--seed', 0))
    .option('--seeds <A..B>', 'sweep seeds A to B, each on its own machine, in a piscina pool', seedRange)
    .option('--ops <n>', 'kernel operations per run', int('--ops', 1, 10_000_000), 500)
    .option('--duration <s>', 'run for this many seconds instead of --ops', int('--duration', 1, 86400))
    .option('--importers <k>', 'streaming importer devices', int('--importers', 1, 4), 4)
    .addOption(new Option('--iommu <state>', 'IOMMU for every device').choices(['on', 'off']).default('off'))
    .addOption(new Option('--inject <fault>', 'fault injected on imp0 at a seeded step: rogue (acks, keeps translations), late (acks after the deadline), hang (stops answering), crash (worker throws)').choices(['rogue', 'late', 'crash', 'hang']))
    .option('--shard <I/N>', 'run the I-th of N slices of --seeds (0 <= I < N) and write JSON', shardArg)
    .option('--json', 'machine-readable output (seed, schedule digest, ops, invalidations, violations, iommuFaults, ack percentiles, injected outcomes)')
    .option('--jobs <n>', 'seeds run at once in a sweep (each is a whole machine: 1 per 2 cores)', int('--jobs', 1, 64), 1)
    .option('--gap-us <n>', 'longest pause before a kernel operation, µs (0: back to back)', int('--gap-us', 0, 1_000_000), 2000)
    .addOption(new Option('--slow <state>', 'slow-device operations: devices that ack late but in time, widening every race window (off: measure prompt devices)').choices(['on', 'off']).default('on'))
    .option('--ack-timeout-ms <n>', 'invalidation ack deadline', int('--ack-timeout-ms', 10, 60000), 1000)
    .option('--trace <file>', 'with --seed: write a Chrome/Perfetto trace (kernel operations, invalidations, acks, device DMA and faults)')
    .option('--report <file>', 'write a self-contained HTML report: one row per seed (ops, invalidations, violations, IOMMU faults, ack p50/p99/max) and an ack latency chart')
    .addHelpText(
      'after',
      helpText(
        'Exit codes: 0 no violation, 1 violation(s) found (a violation names device, buffer, page, generation, schedule step and operation), 2 bad flags, 130/143 interrupted by SIGINT/SIGTERM (no --trace/--report file written).',
        'Replay: every run prints its seed and schedule digest; the same seed and --ops give the same digest and operations.',
        'Examples:\n  peervma stress --seed 7 --ops 2000 --iommu on\n  peervma stress --seeds 1..50 --ops 300 --inject rogue\n  peervma stress --seeds 1..1000 --shard 3/8 > shard-3.json && peervma stress merge shard-*.json',
      ),
    )
    .action(async (flags: StressFlags) => stressCommand(flags));
  cmd
    .command('merge')
    .description('combine --shard JSON files into one (every seed listed once) and print the totals')
    .argument('<files...>', 'JSON files written by --shard or --json')
    .option('--json', 'print the merged JSON')
    .action((files: string[], _flags: unknown, command: Command) => {
      // --json may be parsed by `stress` itself (it has the same flag).
      const flags = command.optsWithGlobals<{ json?: boolean }>();
      let merged: SweepFile;
      try {
        merged = mergeFiles(files);
      } catch (e) {
        if (e instanceof MergeError) {
          process.stderr.write(`peervma stress merge: ${e.message}\n`);
          process.exitCode = 2;
          return;
        }
        throw e;
      }
      process.stdout.write((flags.json ? JSON.stringify(merged, null, 2) : [...merged.seeds.map(formatRunLine), formatTotals(merged.totals)].join('\n')) + '\n');
      process.exitCode = merged.seeds.some((r) => r.exitCode !== 0) ? 1 : 0;
    });
}
