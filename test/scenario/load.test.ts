// Scenario files: the shipped one loads with its defaults; bad ones are refused with
// the file, the key path, the bad value and what was expected.
import t from 'tap';
import { readFile } from 'node:fs/promises';
import { parse, stringify } from 'yaml';
import { ScenarioError } from '../../src/errors.js';
import { loadScenarioFile, parseScenario } from '../../src/scenario/load.js';
import { deviceKinds } from '../../src/devices/device_kinds.js';

const fx = (n: string) => `test/fixtures/scenarios/${n}`;

async function problems(file: string): Promise<readonly string[]> {
  try {
    await loadScenarioFile(file);
  } catch (e) {
    if (e instanceof ScenarioError) return e.problems;
    throw e;
  }
  throw new Error(`${file} loaded`);
}

t.test('the default scenario loads with sizes and defaults resolved', async (t) => {
  const s = await loadScenarioFile('scenarios/camera-chain.yaml');
  t.equal(s.machine.ram, 64 * 1024 * 1024);
  t.equal(s.devices[1].memory, 16 * 1024 * 1024);
  t.equal(s.devices[1].bar, 8 * 1024 * 1024);
  t.match(s.workload, { kind: 'camera-chain', mode: 'p2p', fallback: 'refuse', width: 1280, height: 720, buffers: 3 });
  t.same(s.devices[1].props.matrix, [300, -30, -14, -20, 290, -14, -10, -40, 306], 'kind defaults filled in');
});

t.test('a YAML syntax error names the line and column', async (t) => {
  t.same(await problems(fx('bad-syntax.yaml')), ['line 5, column 1: YAML syntax error: Sequence item without - indicator']);
});

t.test('wrong types name the key path, the value and what was expected', async (t) => {
  t.same(await problems(fx('bad-types.yaml')), [
    'machine.ram: got "lots"; expected a size such as 4096, "256 KiB", "64 MiB" or "1 GiB" (units B, KiB, MiB, GiB, TiB)',
    "devices[1]: unknown key 'colour'",
    'workload.frames: got -3; Too small: expected number to be >=1',
  ]);
});

t.test('dangling names, unknown kinds and bad props are all reported together', async (t) => {
  t.same(await problems(fx('bad-refs.yaml')), [
    `devices[1].kind: got "colour-correctoin"; expected one of ${Object.keys(deviceKinds).map((k) => `"${k}"`).join('|')}`,
    'devices[2].props.gamma: got [2.2,2.2]; Too small: expected array to have >=3 items',
    'workload.camera: device "cc1" is a colour-correction; expected a camera',
    'workload.corrector: got "cc9"; expected the name of a device (cam0, cc0, cc1)',
    'workload.output: got "screen"; expected the name of a process (viewer)',
  ]);
});

t.test('a topology that does not place a device is a scenario error', async (t) => {
  const text = [
    'name: t1',
    'devices: [{name: cam0, kind: camera, memory: 256 KiB}, {name: cc0, kind: colour-correction, memory: 1 MiB}]',
    'topology:',
    '  rootComplexes:',
    "    - {name: rc0, id: '8086:2020', ports: [{slot: '01.0', endpoint: {device: cam0}}]}",
  ].join('\n');
  t.throws(() => parseScenario(text, 't1.yaml'), { name: 'ScenarioError', problems: [/cc0/] });
});

t.test('a workload that does not fit its devices is refused before anything starts', async (t) => {
  const sc = parse(await readFile('scenarios/nic-nvme-queue.yaml', 'utf8'));
  sc.workload.blocks = 100000;
  t.throws(() => parseScenario(stringify(sc), 'nn.yaml'), {
    name: 'ScenarioError',
    problems: [/^workload\.blocks: got 100000; nvme0 needs \d+ pages of memory for the namespace and its CMB queue, its devices\[\]\.memory gives \d+ \(after \d+ of its own\)$/],
  });
});

t.test('the error message starts with the file name', async (t) => {
  await t.rejects(loadScenarioFile(fx('bad-types.yaml')), { message: /^test\/fixtures\/scenarios\/bad-types\.yaml: invalid scenario\n {2}- machine\.ram/ });
  await t.rejects(loadScenarioFile(fx('missing.yaml')), { name: 'InputError', message: 'cannot read scenario file test/fixtures/scenarios/missing.yaml: no such file (ENOENT)' });
});

t.test('sizes must be whole pages and names well formed', async (t) => {
  const base = 'devices: [{name: cam0, kind: camera, memory: 1000}]\nworkload: {kind: camera-chain, camera: cam0, corrector: cam0, output: v}\n';
  t.throws(() => parseScenario(`name: Bad Name\n${base}`, 'x.yaml'), { name: 'ScenarioError', problems: [/^name: got "Bad Name"; expected a name of lower-case letters/, /^devices\[0\]\.memory: got 1000; must be a multiple of the 4096-byte page/] });
});
