// peervma stress --report: a short run writes one self-contained HTML page
// with its seed's row (figures as the run printed them) and the ack
// latency chart; a sweep's page has one row and one bar group per seed.
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { main } from '../../src/cli/main.js';
import { renderStressReport } from '../../src/trace/report_stress_html.js';

t.test('stress --seed N --ops few --report FILE: the seed row and the ack chart', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'peervma-stress-'));
  const file = join(dir, 'stress.html');
  const out: string[] = [];
  const wo = process.stdout.write.bind(process.stdout);
  const we = process.stderr.write.bind(process.stderr);
  process.stdout.write = ((s: string) => (out.push(String(s)), true)) as typeof process.stdout.write;
  process.stderr.write = ((s: string) => (out.push(String(s)), true)) as typeof process.stderr.write;
  let code: number;
  try {
    code = await main(['stress', '--seed', '5', '--ops', '12', '--importers', '2', '--gap-us', '300', '--ack-timeout-ms', '2000', '--json', '--report', file]);
  } finally {
    process.stdout.write = wo;
    process.stderr.write = we;
  }
  process.exitCode = 0;
  t.equal(code, 0, out.join(''));
  const json = JSON.parse(out.join('').slice(out.join('').indexOf('{'), out.join('').lastIndexOf('}') + 1)) as { seeds: { seed: number; ops: number; invalidations: number; violationCount: number; iommuFaults: number; ackUs: { p50: number; p99: number; max: number } }[] };
  const s = json.seeds[0];
  const html = readFileSync(file, 'utf8');
  t.notMatch(html, /<script/i, 'no script');
  const row = /<tr data-seed="5">(.*?)<\/tr>/.exec(html)?.[1];
  t.ok(row, 'the seed row');
  const cells = [...row!.matchAll(/<td>([^<]*)<\/td>/g)].map((m) => m[1]);
  t.same([cells[0], cells[2], cells[3], cells[4], cells[5]], [String(s.seed), String(s.ops), String(s.invalidations), String(s.violationCount), String(s.iommuFaults)]);
  t.same(cells.slice(7), [s.ackUs.p50, s.ackUs.p99, s.ackUs.max].map((v) => `${v.toFixed(1)} us`));
  t.match(html, /data-chart="stress-acks"/);
  t.equal(html.match(/class="mark"/g)?.length, 3, 'p50, p99 and max bars of the seed');
});

t.test('a sweep report: one row and one bar group per seed, violations counted in the title', async (t) => {
  const seed = (n: number, viol: number) => ({ seed: n, schedule: '0123456789abcdef', ops: 10, invalidations: 40 + n, violationCount: viol, iommuFaults: 0, ackUs: { p50: 10 * n, p99: 20 * n, max: 30 * n, n: 5 } });
  const html = renderStressReport([seed(1, 0), seed(2, 3)]);
  t.match(html, /<title>peervma stress: 2 seed\(s\), 3 violation\(s\)<\/title>/);
  t.match(html, /<tr data-seed="2"><td>2<\/td><td>0123456789abcdef<\/td><td>10<\/td><td>42<\/td><td>3<\/td>/);
  t.equal(html.match(/class="mark"/g)?.length, 6);
  t.match(html, /<title>seed 2, max: 60\.0 us<\/title>/, "the chart draws the seed's max");
});
