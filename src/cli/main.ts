#!/usr/bin/env node
/**
 * The `peervma` command. Exit codes: 0 success; 1 the run failed (a device
 * crashed, hung or reported an error, or data differed from the
 * reference); 2 the input was refused before anything started (bad
 * scenario file, limits, usage); 130 / 143 interrupted by SIGINT / SIGTERM
 * (src/cli/interrupt.ts: devices stopped, no file written).
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Command, InvalidArgumentError } from 'commander';
import { DeviceError, InputError, LimitError, P2pRefusedError, PeerVmaError, ScenarioError, VerifyError } from '../errors.js';
import { loadScenarioFile } from '../scenario/load.js';
import { compareScenario, runScenario, type RunReport } from '../scenario/run.js';
import { assertChecks, formatComparison, formatSummary, throughput } from '../trace/summary.js';
import { paragraph, terminalColumns } from '../trace/text_layout.js';
import { openObservers, registerObserveOptions, type ObserveFlags } from './observe.js';
import { registerTopo } from './topo.js';
import { registerStress } from './stress.js';
import { registerBench } from './bench.js';
import { registerTargets } from './targets.js';
import { assertOutputs } from './output_file.js';
import { helpText } from './help_text.js';
import { internalErrorLine, setDebug } from './internal_error.js';
import { installInterruptHandlers, interruptedBy, parked, setOutputFiles, setPhase } from './interrupt.js';
import type { Mode } from '../workloads/workload.js';
import { parseRunTokens, type RunTokenSetting } from '../devices/run_tokens.js';

const PACKAGE_JSON = fileURLToPath(new URL(import.meta.url.includes('/dist/') ? '../../../package.json' : '../../package.json', import.meta.url));
const DEFAULT_SCENARIO = fileURLToPath(new URL(import.meta.url.includes('/dist/') ? '../../../scenarios/camera-chain.yaml' : '../../scenarios/camera-chain.yaml', import.meta.url));

/**
 * An integer flag: only its form is checked here (digits); its range is the
 * scenario key's, checked by applyOverrides with the same schema and
 * message as the file (one validation path).
 */
/** What the timed runs of --compare ran on: their warm-up's device workers (compareScenario's pools), or fresh ones when a warm-up ended unclean. */
function warmWorkers(reports: readonly RunReport[]): string {
  const all = reports.every((r) => r.machine.reused === r.machine.devices);
  return all ? "each timed run reused its warm-up's device workers (stopped and reset in between)" : `timed runs reused ${reports.map((r) => `${r.machine.reused} of ${r.machine.devices}`).join(' and ')} device workers (a warm-up that fails a check gives none back)`;
}

function intArg(name: string, min: number) {
  return (v: string): number => {
    // A number as the YAML file would read it (1e9 is 1000000000, then refused by the range check).
    const n = v.trim() === '' ? NaN : Number(v);
    if (!Number.isSafeInteger(n) || n < min) throw new InvalidArgumentError(`${name} must be an integer >= ${min}, got '${v}'`);
    return n;
  };
}

/** Prints an error the way a user needs it and returns the exit code. */
export function reportError(e: unknown): number {
  if (e instanceof P2pRefusedError) {
    // The fabric's reasons run to a thousand characters: wrapped to the terminal.
    process.stderr.write(`${paragraph(`peervma: ${e.message}`, terminalColumns(), 0, 2)}\n`);
    return 2;
  }
  if (e instanceof ScenarioError || e instanceof LimitError || e instanceof InputError) {
    process.stderr.write(`peervma: ${e.message}\n`);
    return 2;
  }
  if (e instanceof DeviceError || e instanceof VerifyError || e instanceof PeerVmaError) {
    // A device's message, then the kernel's reason for a refused page request, runs to 300 characters: wrapped.
    process.stderr.write(`${paragraph(`peervma: run failed: ${e.message}`, terminalColumns(), 0, 2)}\n`);
    return 1;
  }
  process.stderr.write(internalErrorLine('peervma', e));
  return 1;
}

interface RunFlags {
  seed?: number;
  frames?: number;
  json?: boolean;
  compare?: boolean;
  /** --no-warmup: false. */
  warmup?: boolean;
  mode?: Mode;
  runTokens?: RunTokenSetting;
}

function asJson(r: RunReport) {
  return { ...r, throughput: throughput(r), ratioToMemcpy: throughput(r) / r.memcpy.rate };
}

async function runCommand(file: string, flags: RunFlags & ObserveFlags): Promise<void> {
  if (flags.compare && flags.mode) throw new InputError(`--compare runs the scenario in both modes (p2p, then bounce); it cannot be combined with --mode ${flags.mode}: drop one of them`);
  const sc = await loadScenarioFile(file);
  assertOutputs({ '--trace': flags.trace, '--report': flags.report });
  setOutputFiles([flags.trace, flags.report]);
  setPhase(`run of ${file}${flags.compare ? ' --compare' : ''}`);
  const obs = openObservers(flags);
  const opts = { seed: flags.seed, frames: flags.frames, mode: flags.mode, runTokens: flags.runTokens, trace: obs.trace, progress: obs.progress };
  const warmup = flags.compare === true && flags.warmup !== false;
  const reports = flags.compare ? await compareScenario(sc, opts, warmup) : [await runScenario(sc, opts)];
  for (const note of obs.finish(reports, sc)) process.stderr.write(`peervma: ${note}\n`);
  if (flags.json) {
    process.stdout.write(JSON.stringify(flags.compare ? { p2p: asJson(reports[0]), bounce: asJson(reports[1]) } : asJson(reports[0]), null, 2) + '\n');
  } else {
    process.stdout.write(reports.map((r) => formatSummary(r)).join('\n'));
    if (flags.compare) process.stdout.write('\n' + formatComparison(reports as [RunReport, RunReport]));
    if (warmup) process.stdout.write(paragraph(`Each mode ran once untimed first (a warm-up, as \`peervma bench\` does; --no-warmup skips it); ${warmWorkers(reports)}.`, terminalColumns()) + '\n');
  }
  for (const r of reports) assertChecks(r);
}

export function buildProgram(): Command {
  const program = new Command('peervma')
    .description('Emulated PCIe machine whose devices talk peer to peer through mapped memory (Linux RFC "Device peer to peer (p2p) through vma").\nEach device is a worker_thread; the main thread plays the kernel.')
    .version(JSON.parse(readFileSync(PACKAGE_JSON, 'utf8')).version, '-V, --version', 'print the peervma version')
    .option('--debug', 'print the stack of an internal error, and a line on stderr as each run starts and ends')
    .showHelpAfterError()
    .exitOverride();
  program.hook('preAction', () => setDebug(program.opts().debug === true));
  program
    .command('run')
    .description('run a scenario (YAML) and print its summary; default: the camera chain')
    .argument('[scenario]', 'scenario file', DEFAULT_SCENARIO)
    .option('--seed <n>', 'seed of the run (overrides the scenario)', intArg('--seed', 0))
    .option('--frames <n>', 'frames / iterations to run (overrides the scenario)', intArg('--frames', 1))
    .option('--json', 'print the report as JSON')
    .option('--mode <mode>', 'p2p or bounce (overrides the scenario)', (v: string): Mode => {
      if (v !== 'p2p' && v !== 'bounce') throw new InvalidArgumentError(`--mode must be p2p or bounce, got '${v}'`);
      return v;
    })
    .option('--compare', 'run in p2p mode and in bounce mode, and print them side by side (not with --mode)')
    .option('--no-warmup', 'with --compare: no untimed run of each mode first (the kernel side of each mode then compiles inside its timed window)')
    .option('--run-tokens <n>', 'cooperative run tokens: auto (one per core when devices outnumber cores), off, or a count (overrides machine.runTokens)', (v: string): RunTokenSetting => {
      const r = parseRunTokens(v);
      if (r === null) throw new InvalidArgumentError(`--run-tokens must be auto, off or a whole number, got '${v}'`);
      return r;
    })
    .addHelpText('after', helpText('Exit codes: 0 ok, 1 run failed (device error or data mismatch), 2 scenario refused (bad file, limits, P2P not allowed by the topology), 130/143 interrupted by SIGINT (Ctrl-C) / SIGTERM: devices stopped, no --trace/--report file written (a previous one is left as it was); a second Ctrl-C exits at once.', 'Example: peervma run scenarios/camera-chain.yaml --frames 8 --json'))
    .action(async (file: string, flags: RunFlags) => runCommand(file, flags));
  registerObserveOptions(program.commands.find((c) => c.name() === 'run')!);
  registerTopo(program);
  registerStress(program);
  registerBench(program);
  registerTargets(program);
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv, { from: 'user' });
    // After a signal the interrupt's line is the command's last word (src/cli/interrupt.ts).
    if (interruptedBy()) return await parked();
    // Subcommands that report their own errors (topo) leave an exit code.
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (e) {
    if (interruptedBy()) return await parked();
    const ce = e as { code?: string; exitCode?: number };
    if (typeof ce.code === 'string' && ce.code.startsWith('commander.')) return ce.exitCode === 0 ? 0 : 2;
    return reportError(e);
  }
}

/** The command line (bin/peervma.mjs, `node dist/src/cli/main.js`): main() with SIGINT/SIGTERM handled. */
export async function cli(argv: string[]): Promise<number> {
  installInterruptHandlers();
  return main(argv);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  process.exitCode = await cli(process.argv.slice(2));
}
