// The peervma command as a user meets it: help, a good run, and refusals that name
// the problem and exit non-zero without starting anything. Two tests start the
// real command (bin/peervma.mjs: its exit status, its streams); the others call
// the CLI's main() in this process (test/cli/in_process.ts): same output, same
// exit code, without a Node start per call.
import t from 'tap';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { peervmaIn } from './in_process.js';
import { spawnPeervma } from './spawn_cli.js';

// The two real processes start now and run while the in-process tests do.
const goodRun = spawnPeervma('run', 'test/fixtures/scenarios/small-chain.yaml', '--json', '--frames', '2', '--seed', '5');
const brokenRun = spawnPeervma('run', 'test/fixtures/scenarios/bad-types.yaml');

t.test('--help and run --help explain themselves', async (t) => {
  const top = await peervmaIn('--help');
  t.equal(top.code, 0);
  t.match(top.out, /Usage: peervma \[options\] \[command\]/);
  t.match(top.out, /run \[options\] \[scenario\]/);
  const run = await peervmaIn('run', '--help');
  t.equal(run.code, 0);
  t.match(run.out, /--seed <n>/);
  t.match(run.out, /--frames <n>/);
  t.match(run.out, /--json/);
  t.match(run.out, /Exit codes: 0 ok, 1 run failed/);
});

t.test('a good scenario prints JSON with the verified frames', async (t) => {
  const r = await goodRun;
  t.equal(r.code, 0, r.err);
  const j = JSON.parse(r.out);
  t.match(j, { scenario: 'small-chain', seed: 5, mode: 'p2p', accounting: { extra: { frames: 2, verified: 2 }, checks: [{ ok: true, detail: '2 of 2 frames' }] } });
  t.ok(j.ratioToMemcpy > 0);
});

t.test('a human summary names frames, throughput and RAM traffic', async (t) => {
  const r = await peervmaIn('run', 'test/fixtures/scenarios/small-chain.yaml');
  t.equal(r.code, 0, r.err);
  t.match(r.out, /\nframe size +96x64 RGBA \(24576 bytes\)\n/);
  t.match(r.out, /\ncheck ok +frames bit-exact against the CPU reference: 3 of 3 frames\n/);
  t.match(r.out, /x raw SAB memcpy/);
  t.match(r.out, /system RAM traffic/);
});

t.test('a broken scenario exits 2 naming file, key and value', async (t) => {
  const r = await brokenRun;
  t.equal(r.code, 2);
  t.equal(r.out, '');
  t.match(r.err, /^peervma: test\/fixtures\/scenarios\/bad-types\.yaml: invalid scenario\n {2}- machine\.ram: got "lots"/);
});

t.test('topo validates a scenario exactly as run does', async (t) => {
  const r = await peervmaIn('topo', 'test/fixtures/scenarios/bad-types.yaml');
  t.equal(r.code, 2);
  t.match(r.err, /^peervma topo: test\/fixtures\/scenarios\/bad-types\.yaml: invalid scenario\n {2}- machine\.ram: got "lots"/);
});

t.test('a scenario bigger than the machine is refused with the numbers, naming the key', async (t) => {
  // A static limit (one SharedArrayBuffer), so the answer is the same on every host.
  const r = await peervmaIn('run', 'test/fixtures/scenarios/bad-limits.yaml');
  t.equal(r.code, 2);
  t.equal(r.err, 'peervma: test/fixtures/scenarios/bad-limits.yaml: invalid scenario\n  - devices[1].memory: got 8589934592; that is 8.00 GiB; at most 4096 MiB: each memory is one SharedArrayBuffer, indexed by 32-bit typed arrays\n');
});

t.test('bad flags are usage errors', async (t) => {
  const r = await peervmaIn('run', '--frames', 'zero');
  t.equal(r.code, 2);
  t.match(r.err, /--frames must be an integer >= 1, got 'zero'/);
});

t.test('--frames goes through the file\'s limit: a huge count is refused naming the key, not run', async (t) => {
  const r = await peervmaIn('run', 'test/fixtures/scenarios/small-chain.yaml', '--frames', '1e9');
  t.equal(r.code, 2);
  t.equal(r.err, 'peervma: test/fixtures/scenarios/small-chain.yaml: invalid scenario\n  - --frames (workload.frames): got 1000000000; Too big: expected number to be <=100000\n');
});

t.test('--seed above 2^32-1 is refused as the file\'s seed is', async (t) => {
  const r = await peervmaIn('run', 'test/fixtures/scenarios/small-chain.yaml', '--seed', '4294967296');
  t.equal(r.code, 2);
  t.match(r.err, /- --seed \(seed\): got 4294967296; Too big: expected number to be <=4294967295\n$/);
});

t.test('--compare warms each mode up untimed first and says so; --no-warmup does not', async (t) => {
  const warm = await peervmaIn('run', 'test/fixtures/scenarios/small-chain.yaml', '--compare', '--frames', '2');
  t.equal(warm.code, 0, warm.err);
  t.match(warm.out, /Why p2p is (ahead|behind)/);
  const note = warm.out.slice(warm.out.lastIndexOf('\nEach mode ran once untimed first') + 1);
  t.equal(note.replace(/\n(?!$)/g, ' '), "Each mode ran once untimed first (a warm-up, as `peervma bench` does; --no-warmup skips it); each timed run reused its warm-up's device workers (stopped and reset in between).\n");
  t.same(warm.out.split('\n').filter((l) => l.length > 100), [], 'no line is wider than 100 columns (the note is wrapped)');
  t.match(warm.out, /2 workers \(reused 2 warm, /, 'the machine lines say the timed runs ran on warm workers');
  const cold = await peervmaIn('run', 'test/fixtures/scenarios/small-chain.yaml', '--compare', '--frames', '2', '--no-warmup');
  t.equal(cold.code, 0, cold.err);
  t.match(cold.out, /Why p2p is (ahead|behind)/);
  t.notMatch(cold.out, /warm-up/);
  t.notMatch(cold.out, /reused/, 'without the warm-up every worker is fresh');
  const single = await peervmaIn('run', 'test/fixtures/scenarios/small-chain.yaml', '--frames', '2');
  t.notMatch(single.out, /warm-up/, 'a single-mode run has no warm-up');
});

t.test('--compare with --mode is refused, saying why', async (t) => {
  const r = await peervmaIn('run', 'test/fixtures/scenarios/small-chain.yaml', '--compare', '--mode', 'bounce');
  t.equal(r.code, 2);
  t.equal(r.err, 'peervma: --compare runs the scenario in both modes (p2p, then bounce); it cannot be combined with --mode bounce: drop one of them\n');
});

t.test('a missing scenario file or a directory is refused naming the path', async (t) => {
  const r = await peervmaIn('run', 'no/such.yaml');
  t.equal(r.code, 2);
  t.equal(r.err, 'peervma: cannot read scenario file no/such.yaml: no such file (ENOENT)\n');
  const d = await peervmaIn('topo', '--lspci', 'test/fixtures');
  t.equal(d.code, 2);
  t.equal(d.err, 'peervma topo: cannot read --lspci file test/fixtures: it is a directory, not a file (EISDIR)\n');
});

t.test('an empty lspci capture (lspci not installed) is refused naming the file and how to capture it', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pv-lspci-'));
  const empty = join(dir, 'tree.txt');
  writeFileSync(empty, '');
  const r = await peervmaIn('topo', '--lspci', empty);
  t.equal(r.code, 2);
  t.equal(r.err, `peervma topo: ${empty} is empty: capture it with \`lspci -tvnn > ${empty}\` (lspci comes with pciutils: apt-get install pciutils)\n`);
  const v = await peervmaIn('topo', '--lspci', 'test/fixtures/lspci/server-skylake-plx.tvnn.txt', '--lspci-vvv', empty);
  t.equal(v.code, 2);
  t.match(v.err, `${empty} is empty: capture it with \`lspci -nnvvv > ${empty}\``);
});

t.test('--version prints the package version', async (t) => {
  const r = await peervmaIn('--version');
  t.equal(r.code, 0);
  t.equal(r.out, `${JSON.parse(readFileSync('package.json', 'utf8')).version}\n`);
});

// Every human output fits 100 columns: commander wraps the options, src/cli/help_text.ts the free text after them.
t.test('every --help fits 100 columns', async (t) => {
  for (const args of [[], ['run'], ['topo'], ['stress'], ['stress', 'merge'], ['bench']]) {
    const r = await peervmaIn(...args, '--help');
    t.equal(r.code, 0, `${args.join(' ')} --help`);
    t.same(r.out.split('\n').filter((l) => [...l].length > 100), [], `peervma ${args.join(' ')} --help: no line over 100 columns`);
  }
});

t.test('more frames than the viewer can keep for the check: exit 2 with the numbers, not an internal RangeError', async (t) => {
  const r = await peervmaIn('run', 'scenarios/camera-chain.yaml', '--frames', '3000');
  t.equal(r.code, 2, r.err);
  t.match(r.err, /scenario asks for 10547 MiB of the viewer's recording of every frame .*3000 frames of 3686400 bytes.*, this machine can give 4096 MiB/);
  t.notMatch(r.err, /internal error/);
});
