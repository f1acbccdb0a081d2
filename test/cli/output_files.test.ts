// Files the user asks peervma to write (--trace, --report, bench --json) are checked
// before anything runs: a path that cannot be written is refused with exit 2, naming
// the flag, the path and why, instead of an "internal error" after the whole run.
import t from 'tap';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { peervmaIn } from './in_process.js';

const dir = mkdtempSync(join(tmpdir(), 'peervma-out-'));
const missing = join(dir, 'no-such-dir', 'out.json');
const chain = 'test/fixtures/scenarios/small-chain.yaml';

t.test('run --trace / --report into a missing directory or onto a directory: refused before the run', async (t) => {
  const trace = await peervmaIn('run', chain, '--trace', missing);
  t.equal(trace.code, 2, trace.err);
  t.equal(trace.err, `peervma: cannot write --trace ${missing}: its directory does not exist (ENOENT)\n`);
  t.equal(trace.out, '', 'nothing ran: no summary');
  const report = await peervmaIn('run', chain, '--compare', '--report', dir);
  t.equal(report.code, 2, report.err);
  t.equal(report.err, `peervma: cannot write --report ${dir}: it is a directory, not a file (EISDIR)\n`);
  t.equal(report.out, '');
});

t.test('bench --json and stress --trace: refused before measuring', async (t) => {
  const bench = await peervmaIn('bench', '--quiet', '--only', 'dma', '--json', missing);
  t.equal(bench.code, 2, bench.err);
  t.equal(bench.err, `peervma: cannot write --json ${missing}: its directory does not exist (ENOENT)\n`);
  t.equal(bench.out, '', 'no row was measured');
  const stress = await peervmaIn('stress', '--seed', '1', '--ops', '20', '--trace', missing);
  t.equal(stress.code, 2, stress.err);
  t.equal(stress.err, `peervma: cannot write --trace ${missing}: its directory does not exist (ENOENT)\n`);
  t.equal(stress.out, '');
});

t.test('a writable path still gets its file', async (t) => {
  const file = join(dir, 'trace.json');
  const r = await peervmaIn('run', chain, '--frames', '2', '--trace', file);
  t.equal(r.code, 0, r.err);
  t.match(r.err, `trace: `);
  t.match(r.err, `written to ${file}`);
});
