/**
 * The progress bar of long runs (cli-progress, on stderr): one bar per
 * run (a --compare shows the p2p run, then the bounce run), fed by
 * runScenario's progress callback (RunOptions.progress). Off with
 * --quiet, with --json, when stderr is not a terminal, and for short runs
 * (fewer than MIN_UNITS frames / requests / results), so it never
 * pollutes output that a script reads. --debug prints plain lines instead
 * where no bar shows.
 */
import cliProgress from 'cli-progress';
import type { RunProgress } from '../scenario/run.js';
import { debugOn } from './internal_error.js';

/** Runs smaller than this finish before a bar would tell anything. */
const MIN_UNITS = 20;

export interface ProgressFlags {
  quiet?: boolean;
  json?: boolean;
}

/**
 * With --debug and no bar: one line when a run's devices first report
 * work done and one at its end (`peervma: debug: camera-chain p2p: 3/300
 * frames`), so a log, or a test that signals a run in progress
 * (test/cli/interrupt.test.ts), sees where it is.
 */
function debugLines(stream: NodeJS.WritableStream): (p: RunProgress) => void {
  let label = '';
  return (p) => {
    if ((p.label === label || p.done === 0) && !p.final) return;
    label = p.label;
    stream.write(`peervma: debug: ${p.label}: ${p.done}/${p.total} ${p.unit}${p.final ? ' (end)' : ''}\n`);
  };
}

/** cli-progress's time format, but '--' until an ETA can be estimated (it passes the strings '0', 'INF', 'NULL' before). */
export const etaOrDashes = (t: unknown, o: cliProgress.Options, r: number): string => (typeof t === 'number' && Number.isFinite(t) ? cliProgress.Format.TimeFormat(t, o, r) : '--');

/** The progress callback for runScenario, or undefined when no bar should show. */
export function progressBar(flags: ProgressFlags, stream: NodeJS.WritableStream & { isTTY?: boolean } = process.stderr): ((p: RunProgress) => void) | undefined {
  if (flags.quiet || flags.json || !stream.isTTY) return debugOn() ? debugLines(stream) : undefined;
  let bar: cliProgress.SingleBar | null = null;
  let label = '';
  return (p) => {
    if (p.total < MIN_UNITS) return;
    if (!bar || label !== p.label) {
      bar?.stop();
      label = p.label;
      bar = new cliProgress.SingleBar(
        { stream: stream as NodeJS.WriteStream, format: '{label} [{bar}] {value}/{total} {unit} | {percentage}% | ETA {eta_formatted}', barsize: 30, hideCursor: false, clearOnComplete: true, etaBuffer: 20, formatTime: etaOrDashes },
        cliProgress.Presets.shades_classic,
      );
      bar.start(p.total, p.done, { label: p.label, unit: p.unit });
    } else bar.update(p.done);
    if (p.final) {
      bar.stop();
      bar = null;
      label = '';
    }
  };
}
