// peervma bench --trace / --report on the cheapest rows: one scenario's
// rows (scenario.nic-nvme-queue and its .bounce baseline, 3 repeats each),
// checked end to end: the trace is Chrome trace-event JSON with both
// traced runs (the last repeat, p2p and bounce) and their events, and the
// HTML has the P2P vs bounce pair and every bench row, without a script.
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { main } from '../../src/cli/main.js';
import { renderReport } from '../../src/trace/report_html.js';

async function capture(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const wo = process.stdout.write.bind(process.stdout);
  const we = process.stderr.write.bind(process.stderr);
  process.stdout.write = ((s: string) => (out.push(String(s)), true)) as typeof process.stdout.write;
  process.stderr.write = ((s: string) => (err.push(String(s)), true)) as typeof process.stderr.write;
  try {
    return { code: await main(argv), out: out.join(''), err: err.join('') };
  } finally {
    process.stdout.write = wo;
    process.stderr.write = we;
  }
}

t.test('bench --only scenario --scenarios X --trace --report: a trace of the last repeat, a report with the pair and every row', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'peervma-bench-'));
  const trace = join(dir, 'bench.trace.json');
  const report = join(dir, 'bench.html');
  const r = await capture(['bench', '--only', 'scenario', '--scenarios', 'nic-nvme-queue', '--trace', trace, '--report', report, '--quiet']);
  t.equal(r.code, 0, r.err);
  t.match(r.out, /scenario\.nic-nvme-queue\.bounce/);
  t.match(r.err, /trace: \d+ events written/);

  const json = JSON.parse(readFileSync(trace, 'utf8')) as { traceEvents: { name: string; ph: string; pid: number; args?: Record<string, unknown> }[] };
  const procs = json.traceEvents.filter((e) => e.name === 'process_name').map((e) => e.args?.name);
  t.same(procs, ['nic-nvme-queue (p2p)', 'nic-nvme-queue (bounce)'], 'one trace process per traced run: the last repeat, both modes');
  const events = json.traceEvents.filter((e) => e.ph !== 'M');
  t.ok(events.length > 0, `${events.length} events`);
  for (const pid of [1, 2]) t.ok(events.some((e) => e.pid === pid), `run ${pid} has events`);
  t.ok(events.every((e) => e.ph === 'X' || e.ph === 'i'), 'slices and instants only');

  const html = readFileSync(report, 'utf8');
  t.notMatch(html, /<script/i, 'no script');
  t.notMatch(html, /https?:\/\/(?!www\.w3\.org\/2000\/svg)/, 'no network reference');
  t.match(html, /data-key="nic-nvme-queue:throughput-p2p"/, 'the P2P vs bounce headline of the scenario');
  t.match(html, /data-chart="throughput"/);
  for (const id of ['scenario.nic-nvme-queue.bounce', 'scenario.nic-nvme-queue']) t.match(html, new RegExp(`<tr data-row="${id.replace(/\./g, '\\.')}">`), `row ${id}`);
  // The row's median in the HTML is the one the table printed.
  const median = /^scenario\.nic-nvme-queue\s+MB\/s\s+(\S+)/m.exec(r.out)?.[1];
  t.ok(median, 'the table has the row');
  t.match(html, new RegExp(`<td>scenario\\.nic-nvme-queue</td><td>MB/s</td><td>${median!.replace('.', '\\.')}</td>`));
});

t.test('bench --scenarios with an unknown name fails and names what exists', async (t) => {
  const r = await capture(['bench', '--only', 'scenario', '--scenarios', 'nope', '--quiet']);
  t.not(r.code, 0);
  t.match(r.err, /no scenario with a workload named nope .*have .*nic-nvme-queue/);
});

t.test('a report of bench rows alone (no scenario section) has the rows table and no comparison sections', async (t) => {
  const html = renderReport({ title: 'bench', comparisons: [], benchRows: [{ id: 'boot.64.plain', unit: 'ms', median: 120, min: 110, max: 130, baseline: null, ratio: null }, { id: 'boot.64', unit: 'ms', median: 240, min: 230, max: 250, baseline: 'boot.64.plain', ratio: 2 }] });
  t.match(html, /<tr data-row="boot\.64"><td>boot\.64<\/td><td>ms<\/td><td>240\.0<\/td><td>230\.0<\/td><td>250\.0<\/td><td>2\.000<\/td><td>boot\.64\.plain<\/td><\/tr>/);
  t.notMatch(html, /<h2>Headline/);
  t.notMatch(html, /<script/i);
});
