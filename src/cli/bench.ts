/**
 * `peervma bench [--suite quick|full] [--json FILE] [--only sections]
 * [--scenarios names] [--trace FILE] [--report FILE] [--quiet]`:
 * measures the machine's copy speed and the emulator's figures in one
 * process run and prints them as ratios (bench/suite.ts). Exit 1 when a
 * data or safety check fails during the bench.
 *
 * --trace records the last repeat of each scenario row (its p2p and its
 * bounce run, one trace process each); earlier repeats and the other
 * sections are not traced. --report writes the HTML report
 * (src/trace/report_html.ts) of those same p2p/bounce pairs plus a table
 * of every bench row. A progress bar (one step per section) shows on
 * stderr unless --quiet, --json or stderr is not a terminal; then the
 * section lines are printed as before (none with --quiet).
 */
import { writeOutputFile } from '../common/output_file_write.js';
import cliProgress from 'cli-progress';
import { InvalidArgumentError, type Command } from 'commander';
import { formatTable, runSuite, sectionsToRun, SECTIONS, type Section } from '../../bench/suite.js';
import type { RunReport } from '../scenario/run.js';
import { etaOrDashes } from './progress.js';
import { TraceRecorder, traceViewerHint } from '../trace/recorder.js';
import { renderReport } from '../trace/report_html.js';
import { assertOutputs } from './output_file.js';
import { setOutputFiles, setPhase } from './interrupt.js';
import { helpText } from './help_text.js';

interface BenchFlags {
  suite: 'quick' | 'full';
  json?: string;
  only?: Section[];
  scenarios?: string[];
  trace?: string;
  report?: string;
  quiet?: boolean;
}

function sections(v: string): Section[] {
  const out = v.split(',').map((x) => x.trim());
  const bad = out.filter((x) => !(SECTIONS as readonly string[]).includes(x));
  if (bad.length > 0) throw new InvalidArgumentError(`--only takes sections of ${SECTIONS.join(', ')}; unknown: ${bad.join(', ')}`);
  return out as Section[];
}

/** The stderr side of a bench: a bar with one step per section, or the section lines. */
function progress(flags: BenchFlags): { log: (m: string) => void; stop: () => void } {
  const stream = process.stderr;
  if (flags.quiet) return { log: () => undefined, stop: () => undefined };
  if (flags.json || !stream.isTTY) return { log: (m) => stream.write(m + '\n'), stop: () => undefined };
  const steps = sectionsToRun(flags.only);
  const bar = new cliProgress.SingleBar(
    { stream, format: 'bench [{bar}] {value}/{total} sections | ETA {eta_formatted} | {step}', barsize: 30, hideCursor: false, clearOnComplete: true, etaBuffer: 4, formatTime: etaOrDashes },
    cliProgress.Presets.shades_classic,
  );
  bar.start(steps.length, 0, { step: '' });
  return {
    log: (m) => {
      // runSuite says `bench: <section> (<s> s)` as each section starts.
      const i = steps.indexOf(/^bench: (\w+) \(/.exec(m)?.[1] as Section);
      bar.update(i >= 0 ? i : bar.getProgress() * steps.length, { step: m.replace(/^bench: /, '').slice(0, 60) });
    },
    stop: () => {
      bar.update(steps.length);
      bar.stop();
    },
  };
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
    .option('--scenarios <names>', 'scenario section: only these scenarios (comma-separated names)', (v: string) => v.split(',').map((x) => x.trim()).filter(Boolean))
    .option('--trace <file>', 'write a Chrome/Perfetto trace of the last repeat of each scenario.* row (its p2p and bounce runs, timed with the trace on); other rows are not traced')
    .option('--report <file>', 'write a self-contained HTML report: P2P vs bounce per scenario (last repeat) and a table of every bench row')
    .option('--quiet', 'no progress bar nor section lines on stderr')
    .addHelpText('after', helpText('Exit codes: 0 ok, 1 a data or safety check failed, 2 bad flags, 130/143 interrupted by SIGINT (Ctrl-C) / SIGTERM: devices stopped, no --json/--trace/--report file written (a previous one is left as it was).'))
    .action(async (flags: BenchFlags) => {
      assertOutputs({ '--json': flags.json, '--trace': flags.trace, '--report': flags.report });
      setOutputFiles([flags.json, flags.trace, flags.report]);
      setPhase('bench start-up');
      const trace = flags.trace ? new TraceRecorder() : undefined;
      const pairs: [RunReport, RunReport][] = [];
      const p = progress(flags);
      // runSuite says `bench: <section> (<s> s)` and `bench:   <section>: <row>` as it goes.
      const log = (m: string): void => {
        setPhase(`bench ${m.replace(/^bench:\s*/, '').replace(/ \(\d+ s\)$/, '')}`);
        p.log(m);
      };
      let report;
      try {
        report = await runSuite(flags.suite, flags.only, log, { trace, names: flags.scenarios, pair: (a, b) => pairs.push([a, b]) });
      } finally {
        p.stop();
      }
      process.stdout.write(formatTable(report) + '\n');
      if (flags.json) {
        writeOutputFile(flags.json, JSON.stringify(report, null, 2) + '\n');
        process.stdout.write(`json: ${flags.json}\n`);
      }
      if (flags.report) {
        const m = report.machine;
        const html = renderReport({
          title: `peervma bench (${flags.suite} suite)`,
          comparisons: pairs.map(([p2p, bounce]) => ({ p2p, bounce })),
          benchRows: report.rows,
          notes: [`${String(m.date)}; ${m.repeats} runs per row, ${m.seconds} s; ${m.cpus} cpus (${String(m.cpuModel)}), node ${String(m.node)}`, 'P2P vs bounce figures are from the last repeat of each scenario row.'],
        });
        writeOutputFile(flags.report, html);
        process.stderr.write(`peervma: report written to ${flags.report}\n`);
      }
      if (trace && flags.trace) {
        trace.write(flags.trace);
        const n = trace.events.filter((e) => e.ph !== 'M').length;
        process.stderr.write(`peervma: trace: ${n} events written to ${flags.trace}${trace.dropped ? ` (${trace.dropped} lost: a ring was full)` : ''}; ${traceViewerHint(flags.trace)}\n`);
      }
    });
}
