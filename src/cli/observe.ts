/**
 * The observability flags of `peervma run` (and, later, of stress and
 * bench): `--trace FILE` (Chrome/Perfetto trace-event JSON of every run),
 * `--report FILE` (a self-contained HTML report of a --compare), and
 * `--quiet` (no progress bar). Registered on a command with one call;
 * the command's action opens the observers before running and closes
 * them with the reports after.
 */
import type { Command } from 'commander';
import type { RunProgress, RunReport } from '../scenario/run.js';
import type { Scenario } from '../scenario/schema.js';
import { TraceRecorder, traceViewerHint } from '../trace/recorder.js';
import { writeReport } from '../trace/report_html.js';
import { progressBar } from './progress.js';

export interface ObserveFlags {
  trace?: string;
  report?: string;
  quiet?: boolean;
  json?: boolean;
  compare?: boolean;
}

export function registerObserveOptions(cmd: Command): Command {
  return cmd
    .option('--trace <file>', 'write a Chrome/Perfetto trace of the run(s) (open it at ui.perfetto.dev, or offline with npx speedscope FILE)')
    .option('--report <file>', 'with --compare: write a self-contained HTML report (charts, topology)')
    .option('--quiet', 'no progress bar on stderr')
    .hook('preAction', (c) => {
      const o = c.opts<ObserveFlags>();
      if (o.report && !o.compare) c.error('peervma: --report compares the two modes: add --compare', { exitCode: 2, code: 'commander.usage' });
    });
}


export interface Observers {
  /** Passed to runScenario / compareScenario as `trace` and `progress`. */
  readonly trace?: TraceRecorder;
  readonly progress?: (p: RunProgress) => void;
  /** Writes the files asked for; returns the lines to tell the user (on stderr). */
  finish(reports: readonly RunReport[], sc: Scenario): string[];
}

export function openObservers(flags: ObserveFlags): Observers {
  const trace = flags.trace ? new TraceRecorder() : undefined;
  return {
    trace,
    progress: progressBar(flags),
    finish(reports, sc): string[] {
      const notes: string[] = [];
      if (flags.report && reports.length === 2) {
        writeReport(flags.report, sc, [[reports[0], reports[1]]], [`seed ${reports[0].seed}; ${new Date().toISOString()}`]);
        notes.push(`report written to ${flags.report}`);
      }
      if (trace && flags.trace) {
        trace.write(flags.trace);
        const n = trace.events.filter((e) => e.ph !== 'M').length;
        notes.push(`trace: ${n} events written to ${flags.trace}${trace.dropped ? ` (${trace.dropped} lost: a ring was full)` : ''}; ${traceViewerHint(flags.trace)}`);
      }
      return notes;
    },
  };
}
