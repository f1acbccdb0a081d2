/**
 * The observability flags of `peervma run` (and, later, of stress and
 * bench): `--trace FILE` (Chrome/Perfetto trace-event JSON of every run),
 * `--report FILE` (a self-contained HTML report of a --compare), and
 * `--quiet` (no progress bar). Registered on a command with one call;
 * the command's action opens the observers before running and closes
 * them with the reports after.
 */
import { writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import type { RunReport } from '../scenario/run.js';
import { TraceRecorder } from '../trace/recorder.js';

export interface ObserveFlags {
  trace?: string;
  quiet?: boolean;
  json?: boolean;
}

export function registerObserveOptions(cmd: Command): Command {
  return cmd
    .option('--trace <file>', 'write a Chrome/Perfetto trace of the run(s) (open it at ui.perfetto.dev)')
    .option('--quiet', 'no progress bar on stderr');
}

export interface Observers {
  /** Passed to runScenario / compareScenario as `trace`. */
  readonly trace?: TraceRecorder;
  /** Writes the files asked for; returns the lines to tell the user (on stderr). */
  finish(reports: readonly RunReport[]): string[];
}

export function openObservers(flags: ObserveFlags): Observers {
  const trace = flags.trace ? new TraceRecorder() : undefined;
  return {
    trace,
    finish(): string[] {
      const notes: string[] = [];
      if (trace && flags.trace) {
        trace.write(flags.trace);
        const n = trace.events.filter((e) => e.ph !== 'M').length;
        notes.push(`trace: ${n} events written to ${flags.trace}${trace.dropped ? ` (${trace.dropped} lost: a ring was full)` : ''}; open it at https://ui.perfetto.dev`);
      }
      return notes;
    },
  };
}

/** Writes `text` to `file`, creating or replacing it. */
export function writeOut(file: string, text: string): void {
  writeFileSync(file, text);
}
