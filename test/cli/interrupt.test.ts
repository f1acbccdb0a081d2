// Ctrl-C (SIGINT) and kill (SIGTERM) during run, bench and stress (src/cli/interrupt.ts):
// the real command in its own process, signalled once it says it is running (a line of
// its output, never a fixed sleep): one line naming the signal and the phase, exit
// 130 / 143, devices stopped (one that does not answer is named), no file written and a
// previous file left as it was, no process left, and a second signal exits at once.
import t from 'tap';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

interface Ended {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly err: string;
  readonly out: string;
}

/** The command, started; `when(re, 'err' | 'out')` resolves once that stream has a line matching re. */
function start(...args: string[]) {
  const p = spawn(process.execPath, ['bin/peervma.mjs', ...args], { env: { ...process.env, NODE_OPTIONS: '' } });
  const text = { err: '', out: '' };
  const waiters: { re: RegExp; which: 'err' | 'out'; resolve: () => void }[] = [];
  const wake = (): void => {
    for (const w of waiters.splice(0)) if (w.re.test(text[w.which])) w.resolve();
    else waiters.push(w);
  };
  p.stdout.setEncoding('utf8').on('data', (s: string) => ((text.out += s), wake()));
  p.stderr.setEncoding('utf8').on('data', (s: string) => ((text.err += s), wake()));
  // A command that hangs is killed: the test then fails on the code, not on tap's timeout.
  const guard = setTimeout(() => p.kill('SIGKILL'), 120_000);
  const ended = new Promise<Ended>((resolve) =>
    p.on('close', (code, signal) => {
      clearTimeout(guard);
      resolve({ code, signal, ...text });
    }),
  );
  return {
    pid: p.pid!,
    ended,
    kill: (sig: NodeJS.Signals) => p.kill(sig),
    when: (re: RegExp, which: 'err' | 'out' = 'err') =>
      Promise.race([new Promise<void>((resolve) => (waiters.push({ re, which, resolve }), wake())), ended.then((e) => Promise.reject(new Error(`exited (${e.code}) before ${re}: ${e.err}`)))]),
  };
}

/** Resolves once no signal is pending for the process (the kernel delivered it): two kills in a row could merge into one. */
async function delivered(pid: number): Promise<void> {
  for (;;) {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    if (/^ShdPnd:\s*0+$/m.test(status) && /^SigPnd:\s*0+$/m.test(status)) return;
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** True while a process of that pid exists. */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

const dir = mkdtempSync(join(tmpdir(), 'peervma-int-'));
const chain = 'test/fixtures/scenarios/small-chain.yaml';
// Long enough that no run ends before the signal (~1 ms a frame); the signal ends it.
const FRAMES = '100000';

t.test('SIGINT during run --compare: exit 130, one line, devices stopped, previous trace kept, no report', async (t) => {
  const trace = join(dir, 'trace.json');
  const report = join(dir, 'report.html');
  writeFileSync(trace, 'previous');
  const c = start('--debug', 'run', chain, '--compare', '--no-warmup', '--frames', FRAMES, '--trace', trace, '--report', report);
  await c.when(/peervma: debug: small-chain p2p: /);
  c.kill('SIGINT');
  const e = await c.ended;
  t.equal(e.code, 130, e.err);
  t.match(e.err, /^peervma: interrupted by SIGINT during run of test\/fixtures\/scenarios\/small-chain\.yaml --compare; small-chain \(p2p\): stopped 2 of 2 device\(s\); nothing written to .*trace\.json, .*report\.html; exit 130$/m);
  t.equal(e.err.match(/interrupted/g)?.length, 1, 'one line');
  t.notMatch(e.err, /run failed|internal error/, 'the torn-down run is not reported as a failure');
  t.equal(e.out, '', 'no summary');
  t.equal(readFileSync(trace, 'utf8'), 'previous', 'the previous file is left as it was');
  t.same(readdirSync(dir).sort(), ['trace.json'], 'no report, no temporary file');
  t.notOk(alive(c.pid), 'no process left');
});

t.test('SIGTERM during bench --json: exit 143, the section named, no file', async (t) => {
  const json = join(dir, 'bench.json');
  const c = start('bench', '--only', 'dma', '--json', json);
  await c.when(/^bench: dma \(/m);
  c.kill('SIGTERM');
  const e = await c.ended;
  t.equal(e.code, 143, e.err);
  t.match(e.err, /^peervma: interrupted by SIGTERM during bench dma.*; nothing written to .*bench\.json; exit 143$/m);
  t.notOk(readdirSync(dir).includes('bench.json'), 'no json file');
  t.notOk(alive(c.pid), 'no process left');
});

t.test('SIGINT during a stress sweep: exit 130 after the first seed line', async (t) => {
  const c = start('stress', '--seeds', '1..400', '--ops', '100', '--gap-us', '0');
  await c.when(/^seed \d+ /m, 'out');
  c.kill('SIGINT');
  const e = await c.ended;
  t.equal(e.code, 130, e.err);
  t.match(e.err, /^peervma: interrupted by SIGINT during stress sweep \(\d+ of 400 seeds done/m);
  t.notOk(alive(c.pid), 'no process left');
});

t.test('a device that does not answer stop is named and terminated; the exit stays bounded', async (t) => {
  const c = start('--debug', 'run', 'test/fixtures/scenarios/chain-hang-at-start.yaml', '--frames', FRAMES);
  await c.when(/peervma: debug: chain-hang-at-start p2p: /);
  c.kill('SIGTERM');
  const e = await c.ended;
  t.equal(e.code, 143, e.err);
  t.match(e.err, /^peervma: interrupted by SIGTERM during run of .*; chain-hang-at-start \(p2p\): stopped 2 of 3 device\(s\); bad0 did not answer 'stop' within 2000 ms, terminated; exit 143$/m);
  t.notOk(alive(c.pid), 'no process left');
});

t.test('a second SIGINT exits at once, without waiting for the device that does not answer', async (t) => {
  const c = start('--debug', 'run', 'test/fixtures/scenarios/chain-hang-at-start.yaml', '--frames', FRAMES);
  await c.when(/peervma: debug: chain-hang-at-start p2p: /);
  c.kill('SIGINT');
  await delivered(c.pid);
  c.kill('SIGINT');
  const e = await c.ended;
  t.equal(e.code, 130, e.err);
  t.match(e.err, /^peervma: SIGINT again: exiting now$/m);
  t.notMatch(e.err, /did not answer/, 'it did not wait out the stop budget');
  t.notOk(alive(c.pid), 'no process left');
});
