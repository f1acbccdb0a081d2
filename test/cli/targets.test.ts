// `peervma targets`: issue 11's figures against `bench --json` files. The headline
// table in the README is this command's output, so its counting is tested on runs
// whose figures are known: met in both, in one, in none, not measured, a violation.
import t from 'tap';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { evaluate, formatTargets, type BenchRun } from '../../src/cli/targets.js';
import { peervmaIn } from './in_process.js';

type Row = BenchRun['rows'][number];
const row = (id: string, ratio: number | null, median = 1, note?: string): Row => ({ id, unit: 'x', median, min: median, max: median, baseline: ratio === null ? null : 'b', ratio, note });
const run = (file: string, rows: Row[]): BenchRun => ({ file, machine: { suite: 'quick', date: 'd', loadAvgAtStart: [1], loadAvgAtEnd: [2] }, rows });

const run1 = run('r1.json', [
  row('dma.p2p.contig', 0.95),
  row('dma.bounce', 0.7),
  row('inval.batched', null, 200_000, 'safety violations seen: 0'),
  row('scenario.new-workload', 1.1),
  row('scenario.new-workload.pairs', null, 0.9),
  row('scenario.nic-nvme-queue', 1.4),
]);
const run2 = run('r2.json', [
  row('dma.p2p.contig', 0.91),
  row('dma.bounce', 0.6),
  row('inval.batched', null, 200_000, 'safety violations seen: 2'),
  row('scenario.new-workload', 1.2),
  row('scenario.new-workload.pairs', null, 1.05),
  row('scenario.nic-nvme-queue', 1.6),
]);

t.test('each figure: its value per run, and in how many runs it was met', async (t) => {
  const lines = evaluate([run1, run2]);
  const by = (id: string) => lines.find((l) => l.target.id === id)!;
  t.same([by('dma.p2p.contig').met, by('dma.p2p.contig').measured], [2, 2], 'above 0.9 in both');
  t.same([by('dma.bounce').met, by('dma.bounce').measured], [1, 2], '0.7 is over the 0.5-0.65 band, 0.6 inside it');
  t.same([by('inval.batched').met, by('inval.batched').measured], [1, 2], 'the run that saw safety violations does not meet it, whatever its rate');
  t.same(by('inval.batched').values, [200_000, 200_000], 'the rate is the row median, not a ratio');
  t.same([by('dma.p2p.cold').met, by('dma.p2p.cold').measured], [0, 0], 'a row neither run measured is not counted');
  t.same([by('scenario.new-workload').target.atLeast, by('scenario.new-workload').met], [1.0, 2], 'a scenario not listed anywhere is held to 1.0');
  t.same([by('scenario.new-workload.pairs').met, by('scenario.new-workload.pairs').values], [1, [0.9, 1.05]], 'and so is its pairs median');
  t.same([by('scenario.nic-nvme-queue').target.atLeast, by('scenario.nic-nvme-queue').met], [1.5, 1], 'a streaming scenario is held to 1.5');
});

t.test('the table fits 100 columns and says what it counted', async (t) => {
  const text = formatTargets([run1, run2], evaluate([run1, run2]));
  for (const l of text.split('\n')) t.ok(l.length <= 100, `${l.length} columns: ${l}`);
  t.match(text, /^dma\.bounce +0\.5-0\.65 +0\.70 +0\.60 +0\.60 +0\.65 +0\.70 +1\/2$/m);
  t.match(text, /^inval\.batched +>= 150k, 0 viol\. +200k +200k /m);
  t.match(text, /^dma\.p2p\.cold +>= 0\.5 +- +- +- +- +- +n\/a$/m);
  t.match(text, /6 figures measured: met in every run 2, in some runs 4, in none 0\./);
});

t.test('the command: a table for good files, exit 2 naming a bad one', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'peervma-targets-'));
  const good = join(dir, 'good.json');
  writeFileSync(good, JSON.stringify({ machine: run1.machine, rows: run1.rows }));
  const ok = await peervmaIn('targets', good);
  t.equal(ok.code, 0, ok.err);
  t.match(ok.out, /^dma\.p2p\.contig +>= 0\.9 +0\.95 /m);
  const notJson = join(dir, 'not.json');
  writeFileSync(notJson, 'rows: 3');
  const bad = await peervmaIn('targets', good, notJson);
  t.equal(bad.code, 2);
  t.match(bad.err, `targets: cannot read ${notJson}`);
  t.equal(bad.out, '', 'no half table');
  const wrongShape = join(dir, 'shape.json');
  writeFileSync(wrongShape, JSON.stringify({ machine: {}, rows: [{ id: 'x' }] }));
  const shape = await peervmaIn('targets', wrongShape);
  t.equal(shape.code, 2);
  t.match(shape.err, /is not a `peervma bench --json` report: rows\.0\.unit/);
});
