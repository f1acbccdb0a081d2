/**
 * Ctrl-C (SIGINT) and kill (SIGTERM) during any peervma command, handled
 * once for all of them (installed by cli(), src/cli/main.ts). The kernel's
 * fatal-signal path in small: the first signal stops the command's
 * machines (Machine.interrupt: every running device is asked to stop,
 * at most STOP_BUDGET_MS, then every worker is terminated), refuses every
 * later output file (src/common/output_file_write.ts: an interrupted
 * command writes no file and leaves a previous one as it was), prints one
 * line and exits 128 + the signal number (130, 143). A second signal
 * exits at once. A closed stdout (`| head`) ends the process quietly
 * with 141, as SIGPIPE would.
 *
 * Invariant: after the first signal, the command's own flow may still
 * finish or fail in the background (its devices are gone); main() no
 * longer reports it (the line here is the command's last word) and it can
 * write no file.
 */
import { constants } from 'node:os';
import { Machine, type InterruptOutcome } from '../devices/machine.js';
import { refuseOutputWrites } from '../common/output_file_write.js';

/** How long the devices get to answer 'stop' after a signal before they are terminated anyway. */
export const STOP_BUDGET_MS = 2000;

const SIGNALS = ['SIGINT', 'SIGTERM'] as const;
type Caught = (typeof SIGNALS)[number];

let phase = 'start-up';
let files: string[] = [];
let caught: Caught | null = null;
let installed = false;

/** What the command is doing now, for the interrupt's line ("run of scenarios/x.yaml", "bench dma"). */
export function setPhase(p: string): void {
  phase = p;
}

/** The files the command will write when it ends (named in the interrupt's line as not written). */
export function setOutputFiles(paths: readonly (string | undefined)[]): void {
  files = paths.filter((p): p is string => p !== undefined);
}

/** 128 + the signal's number: what a shell reports for a process the signal killed. */
export function exitCodeOf(sig: Caught): number {
  return 128 + constants.signals[sig];
}

function describe(m: InterruptOutcome): string {
  const what = m.state === 'running' ? `stopped ${m.stopped} of ${m.devices} device(s)` : `${m.devices} device worker(s) terminated (machine ${m.state})`;
  const late = m.late.length > 0 ? `; ${m.late.join(', ')} did not answer 'stop' within ${STOP_BUDGET_MS} ms, terminated` : '';
  return `${m.label}: ${what}${late}`;
}

async function quiesce(sig: Caught): Promise<never> {
  refuseOutputWrites(`interrupted by ${sig}`);
  const during = phase;
  const machines = Machine.liveMachines();
  const outcomes = await Promise.all(machines.map((m) => m.interrupt(STOP_BUDGET_MS)));
  const devices = outcomes.length > 0 ? outcomes.map(describe).join('; ') : 'no machine of this thread was up';
  const written = files.length > 0 ? `; nothing written to ${files.join(', ')}` : '';
  process.stderr.write(`peervma: interrupted by ${sig} during ${during}; ${devices}${written}; exit ${exitCodeOf(sig)}\n`);
  process.exit(exitCodeOf(sig));
}

function onSignal(sig: Caught): void {
  if (caught) {
    process.stderr.write(`peervma: ${sig} again: exiting now\n`);
    process.exit(exitCodeOf(sig));
  }
  caught = sig;
  void quiesce(sig);
}

/** Installs the handlers, once per process: only the command line (cli() in main.ts), never a test running main() in its own process. */
export function installInterruptHandlers(): void {
  if (installed) return;
  installed = true;
  for (const s of SIGNALS) process.on(s, () => onSignal(s));
  // `peervma ... | head`: the reader left. Node ignores SIGPIPE, so the write fails with
  // EPIPE instead; end quietly as a killed writer would (128 + SIGPIPE), not with a stack.
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code !== 'EPIPE') throw e;
    process.exit(128 + constants.signals.SIGPIPE);
  });
}

/** The signal caught, or null. */
export function interruptedBy(): Caught | null {
  return caught;
}

/** Never settles: what main() awaits instead of reporting a command that ended after a signal (quiesce exits the process). */
export function parked(): Promise<never> {
  return new Promise<never>(() => undefined);
}
