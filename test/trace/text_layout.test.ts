// The text layout under the summaries: wrapping with a hanging indent, label/value
// blocks, borderless tables, $COLUMNS, and counts with their units.
import t from 'tap';
import { kvBlock, paragraph, table, terminalColumns, wrap } from '../../src/trace/text_layout.js';
import { count, isMachineKey } from '../../src/trace/summary.js';

t.test('wrap: at spaces, long words cut, newlines kept', async (t) => {
  t.same(wrap('aaa bbb ccc', 7), ['aaa bbb', 'ccc']);
  t.same(wrap('abcdefghij', 4), ['abcd', 'efgh', 'ij']);
  t.same(wrap('a\nb c', 10), ['a', 'b c']);
  t.equal(paragraph('one two three', 9, 0, 2), 'one two\n  three');
});

t.test('kvBlock: values wrap under their column; an over-long label gets its own line', async (t) => {
  const s = kvBlock([['a', 'x y z'], ['bb', 'v']], 7);
  t.equal(s, 'a   x y\n    z\nbb  v');
  const long = kvBlock([['k', 'v'], ['x'.repeat(45), 'w']], 80);
  t.match(long, new RegExp(`\\n${'x'.repeat(45)}\\n +w$`));
  for (const l of long.split('\n')) t.ok(l.length <= 80);
});

t.test('table: first column left, figures right, a rule under the head', async (t) => {
  t.equal(table(['dev', 'n'], [['cam0', '12'], ['c', '3']]), 'dev    n\n----  --\ncam0  12\nc      3');
});

t.test('table: wider than the terminal, each row stacked, a figure never split from its unit', async (t) => {
  const head = ['device', 'commands', 'DMA ms', 'RAM written', 'P2P written'];
  const rows = [['cam0', '4', '5.5', '0 B', '14.1 MiB'], ['cc0', '4', '10.2', '14.1 MiB', '0 B']];
  t.equal(table(head, rows, 60), table(head, rows), 'fits: the table as it is');
  const text = table(head, rows, 40);
  t.same(text.split('\n').filter((l) => [...l].length > 40), [], 'every line fits 40 columns');
  t.equal(text, 'device\n------\ncam0\n  commands 4 · DMA ms 5.5\n  RAM written 0 B · P2P written 14.1 MiB\ncc0\n  commands 4 · DMA ms 10.2\n  RAM written 14.1 MiB · P2P written 0 B');
});

t.test('terminalColumns: $COLUMNS, else 100, never below 60', async (t) => {
  t.equal(terminalColumns({}), 100);
  t.equal(terminalColumns({ COLUMNS: '132' }), 132);
  t.equal(terminalColumns({ COLUMNS: '20' }), 60);
  t.equal(terminalColumns({ COLUMNS: 'wide' }), 100);
});

t.test('count: unit always, singular for one, bytes as KiB/MiB', async (t) => {
  t.equal(count(26763, 'slots'), '26763 slots');
  t.equal(count(1, 'slots'), '1 slot');
  t.equal(count(0.5, 'interventions'), '0.5 interventions');
  t.equal(count(2048, 'B'), '2.0 KiB');
  t.equal(count(1, 'IO/s'), '1 IO/s');
});

t.test('machine keys are the camelCase ones', async (t) => {
  t.ok(isMachineKey('revokesFired'));
  t.ok(isMachineKey('slowdownPct'));
  t.notOk(isMachineKey('BAR slots recycled'));
  t.notOk(isMachineKey('IOPS'));
  t.notOk(isMachineKey('iterations'));
});

// The summaries' width and wording rules (test/fixtures/summary_width.ts) are checked on
// the runs the workload tests make; every shipped scenario with a workload must be handed
// to them by some test, so a new scenario cannot ship with unchecked summaries.
t.test('every shipped workload scenario has its summaries checked by a test', async (t) => {
  const { readdirSync, readFileSync } = await import('node:fs');
  const shipped = readdirSync('scenarios').filter((f) => f.endsWith('.yaml') && /^workload:/m.test(readFileSync(`scenarios/${f}`, 'utf8')));
  const tests = readdirSync('test', { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.test.ts'));
  const checked = tests.flatMap((f) => [...readFileSync(`test/${f}`, 'utf8').matchAll(/(?:checkSummaries\(t, |new SummaryRuns\()'scenarios\/([\w-]+\.yaml)'/g)].map((m) => m[1]));
  t.ok(shipped.length >= 9, `${shipped.length} shipped workload scenarios`);
  t.same([...new Set(checked)].sort(), shipped.sort());
});
