// --report: the HTML report of a small --compare, opened in headless Chromium
// (Debian's /usr/bin/chromium through playwright-core): every chart rendered with
// its marks, the headline numbers in the page, no console error, no network.
import t from 'tap';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { writeReport } from '../../src/trace/report_html.js';
import { loadScenarioFile } from '../../src/scenario/load.js';
import { compareScenario } from '../../src/scenario/run.js';
import { throughput } from '../../src/trace/summary.js';
import { formatBytes } from '../../src/common/size.js';
import { renderReport } from '../../src/trace/report_html.js';
import { cmdSizeRows, CMD_SIZES } from '../../bench/cmd_size.js';
import { memcpyRate } from '../../bench/memcpy.js';
import { repeat, RowSet } from '../../bench/stats.js';
import { writeFileSync } from 'node:fs';

const CHROMIUM = '/usr/bin/chromium';
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

// Without Chromium a developer's `npm test` skips this file (and says how to
// install it); under CI (.ci/run sets CI and installs Chromium) it must run.
const missing = existsSync(CHROMIUM) ? false : `${CHROMIUM} is missing: apt-get install chromium to run this test`;

// One Chromium for the file's tests, started by the first that needs it.
let browserP: Promise<Browser> | null = null;
const browser = () => (browserP ??= chromium.launch({ executablePath: CHROMIUM, args: ARGS, timeout: 60_000 }));
t.teardown(async () => {
  if (browserP) await (await browserP).close();
});

t.test('the report renders in Chromium with every chart, the headline figures and no error', { skip: process.env.CI ? false : missing }, async (t) => {
  t.ok(existsSync(CHROMIUM), `${CHROMIUM} is installed (apt-get install chromium; .ci/run installs it when missing)`);
  if (!existsSync(CHROMIUM)) return;
  const sc = await loadScenarioFile('scenarios/camera-chain.yaml');
  // Small frames and BAR: slots recycle, so there are invalidations to plot.
  Object.assign(sc.workload!, { width: 200, height: 150, buffers: 2 });
  Object.assign(sc.devices[1], { memory: 1024 * 1024, bar: 128 * 1024 });
  const [p2p, bounce] = await compareScenario(sc, { frames: 4 });
  const file = join(mkdtempSync(join(tmpdir(), 'peervma-report-')), 'report.html');
  writeReport(file, sc, [[p2p, bounce]]);
  t.notMatch(readFileSync(file, 'utf8'), /<script|https?:\/\/(?!www\.w3\.org\/2000\/svg)/, 'self-contained: no script, no URL but the SVG namespace');

  const page = await (await browser()).newPage();
  t.teardown(() => page.close());
  const errors: string[] = [];
  const remote: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('request', (r) => {
    if (!r.url().startsWith('file:')) remote.push(r.url());
  });
  await page.goto(`file://${file}`, { timeout: 60_000 });
  const charts = await page.$$eval('svg.chart', (svgs) =>
    svgs.map((s) => {
      const r = s.getBoundingClientRect();
      return { name: s.getAttribute('data-chart'), w: r.width, h: r.height, marks: s.querySelectorAll('rect.mark').length };
    }),
  );
  t.same(charts.map((c) => c.name), ['throughput', 'modeled', 'ram', 'stages', 'acks-0', 'links-0'], 'every chart is in the page');
  for (const c of charts) t.ok(c.w > 100 && c.h > 40 && c.marks > 0, `${c.name}: rendered ${c.w}x${c.h} with ${c.marks} marks`);
  const topo = await page.$eval('.topo svg', (s) => ({ h: s.getBoundingClientRect().height, nodes: s.querySelectorAll('g.node').length, cells: s.querySelectorAll('rect.cell').length }));
  t.ok(topo.h > 100 && topo.nodes === 7 && topo.cells === 4, `the topology: ${topo.nodes} nodes (rc, root port, 3 switch ports, 2 devices), a 2x2 P2P matrix`);
  const head = await page.$$eval('td.headline', (tds) => Object.fromEntries(tds.map((td) => [td.getAttribute('data-key'), td.textContent])));
  t.equal(head['camera-chain:throughput-p2p'], `${(throughput(p2p) / 1e6).toFixed(1)} MB/s`);
  t.equal(head['camera-chain:throughput-bounce'], `${(throughput(bounce) / 1e6).toFixed(1)} MB/s`);
  t.equal(head['camera-chain:ram-saved'], formatBytes(bounce.accounting.ramBytes - p2p.accounting.ramBytes));
  t.equal(head['camera-chain:modeled-p2p'], `${(p2p.accounting.modeledSeconds * 1000).toFixed(2)} ms`);
  t.same(errors, [], 'no console error');
  t.same(remote, [], 'no network request');
});

t.test('the bench report charts throughput against command size', { skip: process.env.CI ? false : missing }, async (t) => {
  if (!existsSync(CHROMIUM)) return;
  const MiB = 1024 * 1024;
  // A real (small) sweep: 4 MiB per pass, one repeat; memcpy.dram is its baseline row.
  const rows = new RowSet();
  rows.add('memcpy.dram', 'MB/s', await repeat(1, memcpyRate(4 * MiB, 8 * MiB)));
  await cmdSizeRows(rows, { span: 4 * MiB, repeats: 1 });
  const sweep = rows.rows.filter((r) => r.id.startsWith('dma.p2p.cmd.'));
  t.same(sweep.map((r) => r.id), CMD_SIZES.map(([, s]) => `dma.p2p.cmd.${s}`), 'a row per command size');
  const file = join(mkdtempSync(join(tmpdir(), 'peervma-bench-report-')), 'bench.html');
  writeFileSync(file, renderReport({ title: 'peervma bench', comparisons: [], benchRows: rows.rows }));

  const page = await (await browser()).newPage();
  t.teardown(() => page.close());
  const errors: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(`file://${file}`, { timeout: 60_000 });
  const chart = await page.$eval('svg.chart[data-chart="cmd-size"]', (s) => {
    const r = s.getBoundingClientRect();
    return { w: r.width, h: r.height, marks: [...s.querySelectorAll('rect.mark')].map((m) => ({ h: m.getBoundingClientRect().height, title: m.querySelector('title')?.textContent ?? '' })) };
  });
  t.ok(chart.w > 300 && chart.h > 150, `rendered ${chart.w}x${chart.h}`);
  t.equal(chart.marks.length, CMD_SIZES.length, 'a column per command size');
  t.ok(chart.marks.every((m) => m.h > 0), 'every column has a height');
  t.same(chart.marks.map((m) => m.title.split(':')[0]), ['4 KiB', '16 KiB', '64 KiB', '256 KiB', '1 MiB', '4 MiB'], 'in ascending size');
  t.same(chart.marks.map((m) => Number(m.title.split(': ')[1].split(' ')[0])), sweep.map((r) => Number(r.median.toFixed(0))), 'each column is its row\'s median');
  t.notOk(await page.$('text=Not in this report: throughput against command size'), 'the "not in this report" note is gone');
  t.same(errors, [], 'no console error');
});
