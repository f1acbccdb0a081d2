// Progress bars of long runs: fed by runScenario's progress callback, drawn on a
// terminal's stderr only, never with --quiet or --json, never into a pipe.
import t from 'tap';
import { PassThrough } from 'node:stream';
import { progressBar } from '../../src/cli/progress.js';
import { loadScenarioFile } from '../../src/scenario/load.js';
import { runScenario, type RunProgress } from '../../src/scenario/run.js';
import { spawnPeervma } from './spawn_cli.js';

// A real process whose stderr is a pipe; it starts now and runs while the other tests do.
const piped = spawnPeervma('run', 'test/fixtures/scenarios/small-chain.yaml', '--frames', '25');

function tty(): PassThrough & { isTTY: boolean; columns: number; out: () => string } {
  const s = new PassThrough() as PassThrough & { isTTY: boolean; columns: number; out: () => string; cursorTo: () => boolean; clearLine: () => boolean; moveCursor: () => boolean };
  let text = '';
  s.on('data', (d: Buffer) => (text += d.toString()));
  s.isTTY = true;
  s.columns = 100;
  s.cursorTo = () => true;
  s.clearLine = () => true;
  s.moveCursor = () => true;
  s.out = () => text;
  return s;
}

t.test('off with --quiet, --json, a pipe, or a short run', async (t) => {
  t.equal(progressBar({ quiet: true }, tty()), undefined);
  t.equal(progressBar({ json: true }, tty()), undefined);
  t.equal(progressBar({}, new PassThrough()), undefined, 'not a terminal');
  const s = tty();
  progressBar({}, s)!({ label: 'x p2p', done: 3, total: 10, unit: 'frames', final: false });
  t.equal(s.out(), '', 'ten frames: no bar');
});

t.test('a bar per run on a terminal, with count, unit and ETA', async (t) => {
  const s = tty();
  const bar = progressBar({}, s)!;
  bar({ label: 'camera-chain p2p', done: 0, total: 40, unit: 'frames', final: false });
  bar({ label: 'camera-chain p2p', done: 12, total: 40, unit: 'frames', final: false });
  await new Promise((r) => setTimeout(r, 150)); // cli-progress redraws at most 10 times a second
  bar({ label: 'camera-chain p2p', done: 13, total: 40, unit: 'frames', final: false });
  t.match(s.out(), /camera-chain p2p \[[█░]+\] 1[23]\/40 frames \| 3[02]% \| ETA /);
  bar({ label: 'camera-chain p2p', done: 40, total: 40, unit: 'frames', final: true });
  bar({ label: 'camera-chain bounce', done: 1, total: 40, unit: 'frames', final: false });
  t.match(s.out(), /camera-chain bounce \[/, 'the second run gets its own bar');
  bar({ label: 'camera-chain bounce', done: 40, total: 40, unit: 'frames', final: true }); // a live bar keeps its redraw timer
});

t.test('no ETA on the first tick, before it can be estimated', async (t) => {
  const s = tty();
  const bar = progressBar({}, s)!;
  bar({ label: 'camera-chain p2p', done: 0, total: 20, unit: 'frames', final: false });
  t.match(s.out(), /0\/20 frames \| 0% \| ETA --/);
  t.notMatch(s.out(), /NF|NULL|LL/);
  bar({ label: 'camera-chain p2p', done: 20, total: 20, unit: 'frames', final: true });
});

t.test('runScenario reports progress from the devices, ending at the total', async (t) => {
  const sc = await loadScenarioFile('test/fixtures/scenarios/small-chain.yaml');
  const seen: RunProgress[] = [];
  await runScenario(sc, { frames: 6, progress: (p) => seen.push(p) });
  t.ok(seen.length >= 2, `${seen.length} reports`);
  t.ok(seen.every((p, i) => p.total === 6 && p.unit === 'frames' && (i === 0 || p.done >= seen[i - 1].done)), 'counts only go up');
  t.match(seen[seen.length - 1], { done: 6, final: true, label: 'small-chain p2p' });
});

t.test('a long run into a pipe: nothing on stderr', async (t) => {
  const r = await piped;
  t.equal(r.code, 0, r.err);
  t.equal(r.err, '');
  t.match(r.out, /frames +25 frames/);
});
