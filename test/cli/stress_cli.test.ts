// `peervma stress` as a user meets it: help, a single run's JSON, a tiny
// sharded sweep merged back, the same seed giving the same schedule digest,
// and refusals (bad flags, overlapping shards) that exit 2. The JSON run and
// one shard start the real command (bin/peervma.mjs: exit status, stdout);
// the rest call the CLI's main() in this process (test/cli/in_process.ts).
import t from 'tap';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { peervmaIn } from './in_process.js';
import { spawnPeervma } from './spawn_cli.js';

const tiny = ['--ops', '15', '--importers', '1', '--gap-us', '200'];
// Two real processes start now and run while the in-process tests do: a
// JSON run (exit status, stdout) and the second shard of the sweep below.
const jsonRun = spawnPeervma('stress', '--seed', '9', ...tiny, '--json');
const shard1 = spawnPeervma('stress', '--seeds', '1..3', ...tiny, '--shard', '1/2');

t.test('stress --help names every flag and the exit codes', async (t) => {
  const h = await peervmaIn('stress', '--help');
  t.equal(h.code, 0);
  for (const f of ['--seed', '--seeds', '--ops', '--duration', '--importers', '--iommu', '--inject', '--shard', '--json']) t.match(h.out, f);
  t.match(h.out, /Exit codes: 0 no violation, 1 violation/);
  t.match(h.out, /merge/);
});

t.test('bad flags exit 2 with the reason', async (t) => {
  for (const [args, why] of [
    [['--seeds', '5..1'], /--seeds takes A..B with A <= B/],
    [['--shard', '3/3', '--seeds', '1..4'], /--shard takes I\/N with 0 <= I < N/],
    [['--inject', 'melt'], /Allowed choices are rogue, late, crash, hang/],
    [['--seed', '1', '--seeds', '1..2'], /not both/],
    [['--importers', '0'], /--importers must be an integer in 1..4/],
  ] as const) {
    const r = await peervmaIn('stress', ...args);
    t.equal(r.code, 2, args.join(' '));
    t.match(r.err, why);
  }
});

t.test('one run as JSON; the same seed gives the same schedule digest', async (t) => {
  const a = await jsonRun;
  t.equal(a.code, 0, a.err);
  const j = JSON.parse(a.out);
  const r = j.seeds[0];
  t.match(r, { seed: 9, ops: 15, violations: [], iommuFaults: 0, injected: [] });
  for (const k of ['schedule', 'invalidations', 'ackUs', 'roundTripUs']) t.ok(k in r, k);
  t.match(r.ackUs, { p50: Number, p99: Number, max: Number });
  const b = await peervmaIn('stress', '--seed', '9', ...tiny);
  t.equal(b.code, 0);
  t.match(b.out, `schedule ${r.schedule}`);
  t.match(b.out, /replay: peervma stress --seed 9 --ops 15 --importers 1/);
});

t.test('two shards of a sweep merge into one list of every seed; overlapping shards are refused', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'peervma-stress-'));
  const files: string[] = [];
  for (const i of [0, 1]) {
    const r = i === 0 ? await peervmaIn('stress', '--seeds', '1..3', ...tiny, '--shard', '0/2') : await shard1;
    t.equal(r.code, 0, r.err);
    const f = join(dir, `shard-${i}.json`);
    writeFileSync(f, r.out);
    files.push(f);
  }
  const m = await peervmaIn('stress', 'merge', ...files, '--json');
  t.equal(m.code, 0, m.err);
  const j = JSON.parse(m.out);
  t.same(j.seeds.map((s: { seed: number }) => s.seed), [1, 2, 3]);
  t.equal(j.totals.seeds, 3);
  const dup = await peervmaIn('stress', 'merge', files[0], files[0]);
  t.equal(dup.code, 2);
  t.match(dup.err, /overlapping shards/);
});
