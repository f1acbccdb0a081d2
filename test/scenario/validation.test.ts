// One validation path for scenario keys and command-line overrides: the same limits and
// messages (naming the key the user wrote, or the flag beside the key it overrides),
// limits checked before the schema walks a huge input, and files named when unreadable.
import t from 'tap';
import { readFile } from 'node:fs/promises';
import { parse, stringify } from 'yaml';
import { InputError, ScenarioError } from '../../src/errors.js';
import { loadScenarioFile, parseScenario, prepareRun } from '../../src/scenario/load.js';
import { runScenario } from '../../src/scenario/run.js';
import { sizeSchema } from '../../src/common/size.js';

const SMALL = 'test/fixtures/scenarios/small-chain.yaml';

/** small-chain.yaml with `edit` applied to its parsed YAML, loaded as `file`. */
async function edited(edit: (y: any) => void, file = 'edited.yaml') {
  const y = parse(await readFile(SMALL, 'utf8'));
  edit(y);
  return parseScenario(stringify(y), file);
}

function problemsOf(fn: () => unknown): readonly string[] {
  try {
    fn();
  } catch (e) {
    if (e instanceof ScenarioError) return e.problems;
    throw e;
  }
  throw new Error('accepted');
}

t.test('sizes take units up to TiB; a memory over 4 GiB is refused with its size in words', async (t) => {
  t.equal(sizeSchema.parse('1 TiB'), 1024 ** 4);
  t.equal(sizeSchema.parse('2GiB'), 2 * 1024 ** 3);
  await t.rejects(edited((y) => (y.machine.ram = '1 TiB')), { name: 'ScenarioError', problems: ['machine.ram: got 1099511627776; that is 1.00 TiB; at most 4096 MiB: each memory is one SharedArrayBuffer, indexed by 32-bit typed arrays'] });
  await t.rejects(edited((y) => (y.devices[1].memory = '8 GiB')), { name: 'ScenarioError', problems: [/^devices\[1\]\.memory: got 8589934592; that is 8\.00 GiB; at most 4096 MiB/] });
  await t.rejects(edited((y) => (y.machine.ram = '1 PiB')), { name: 'ScenarioError', problems: [/^machine\.ram: got "1 PiB"; expected a size such as .*\(units B, KiB, MiB, GiB, TiB\)$/] });
});

t.test('ram: 0 is an input error naming the key', async (t) => {
  await t.rejects(edited((y) => (y.machine.ram = 0)), { name: 'ScenarioError', problems: ['machine.ram: got 0; system RAM needs at least one 4096-byte page'] });
});

t.test('a RAM too small for the workload is an input error naming machine.ram, not a failed run', async (t) => {
  const sc = await edited((y) => (y.machine.ram = '4 KiB'), 'tiny.yaml');
  await t.rejects(runScenario(sc, { frames: 1 }), {
    name: 'ScenarioError',
    message: /^tiny\.yaml: invalid scenario\n {2}- machine\.ram: got 4096; too small for this run of camera-chain \(system RAM: no run of \d+ free pages/,
  });
});

t.test('bar: 0 on a p2p exporter is an input error naming the key; bounce mode needs no BAR', async (t) => {
  const sc = await edited((y) => (y.devices[1].bar = 0));
  t.same(problemsOf(() => prepareRun(sc, {})), ['devices[1].bar: got 0; cc0 exports its memory to cam0 in p2p mode, through a BAR window onto its memory (give it one, or run in bounce mode)']);
  t.equal(prepareRun(sc, { mode: 'bounce' }).workload!.mode, 'bounce');
});

t.test('more devices than the limit are refused before the schema walks them: one line, no dump', async (t) => {
  const devices = Array.from({ length: 4100 }, (_, i) => `  - {name: d${i}, kind: camera, memory: 256 KiB, colour: red}`).join('\n');
  t.same(problemsOf(() => parseScenario(`name: many\ndevices:\n${devices}\n`, 'many.yaml')), ['devices: got 4100 devices; at most 4096 in a scenario file (how many this host runs follows from its memory)']);
});

t.test('an unknown workload kind names the key and the choices, not the whole object', async (t) => {
  await t.rejects(edited((y) => (y.workload.kind = 'camera-chian')), { name: 'ScenarioError', problems: ['workload.kind: got "camera-chian"; expected one of "camera-chain"|"accel-progress"|"accel-nic-stream"|"hmm-peer"|"nic-nvme-queue"'] });
});

t.test('duplicate device names are the one problem reported, no follow-on about a generated topology', async (t) => {
  await t.rejects(edited((y) => (y.devices[1].name = 'cam0')), { name: 'ScenarioError', problems: ['devices[1].name: got "cam0"; already used by devices[0] (device names must be unique)'] });
});

t.test('a missing file or a directory is refused naming the path', async (t) => {
  await t.rejects(loadScenarioFile('test/fixtures/scenarios/missing.yaml'), new InputError('cannot read scenario file test/fixtures/scenarios/missing.yaml: no such file (ENOENT)'));
  await t.rejects(loadScenarioFile('test/fixtures/scenarios'), new InputError('cannot read scenario file test/fixtures/scenarios: it is a directory, not a file (EISDIR)'));
});

t.test('overrides go through the file\'s limits and name the flag beside the key', async (t) => {
  const sc = await loadScenarioFile(SMALL);
  t.same(problemsOf(() => prepareRun(sc, { frames: 1e9 })), ['--frames (workload.frames): got 1000000000; Too big: expected number to be <=100000']);
  t.same(problemsOf(() => prepareRun(sc, { seed: 2 ** 32 })), ['--seed (seed): got 4294967296; Too big: expected number to be <=4294967295']);
  t.same(problemsOf(() => prepareRun(sc, { seed: 1.5 })), ['--seed (seed): got 1.5; expected int, received number']);
  const ok = prepareRun(sc, { seed: 2 ** 32 - 1, frames: 100000 });
  t.equal(ok.seed, 2 ** 32 - 1);
  t.equal(ok.workload!.kind === 'camera-chain' && ok.workload!.frames, 100000);
  t.equal(sc.workload!.kind === 'camera-chain' && sc.workload!.frames, 3, 'the loaded scenario is not changed');
});
