// Device groups (`count: N` on a devices entry, src/scenario/device_groups.ts): N devices
// <name>0..N-1 with their own props; a bad count or a problem with a member is reported
// against the entry the file wrote.
import t from 'tap';
import { parseScenario } from '../../src/scenario/load.js';
import { ScenarioError } from '../../src/errors.js';

const file = (devices: string) => `name: g\ndevices:\n${devices}\n`;

t.test('a group is its N devices, in place, each with props of its own', async (t) => {
  const s = parseScenario(file('  - { name: first, kind: nic, memory: 256 KiB }\n  - { name: cc, kind: colour-correction, memory: 1 MiB, count: 3, props: { gamma: [2, 2, 2] } }\n  - { name: last, kind: nic, memory: 256 KiB }'), 'g.yaml');
  t.same(s.devices.map((d) => d.name), ['first', 'cc0', 'cc1', 'cc2', 'last']);
  t.same(s.devices[2].props.gamma, [2, 2, 2]);
  (s.devices[2].props.gamma as number[])[0] = 9;
  t.same(s.devices[3].props.gamma, [2, 2, 2], 'not shared with cc1');
});

t.test('problems name the entry written', async (t) => {
  const e1 = t.throws(() => parseScenario(file('  - { name: a, kind: nic, count: 0 }'), 'g.yaml')) as ScenarioError;
  t.ok(e1 instanceof ScenarioError);
  t.match(e1.message, /devices\[0\]\.count: got 0; expected a whole number of devices from 1 to \d+/);
  const e2 = t.throws(() => parseScenario(file('  - { name: ok, kind: nic, memory: 256 KiB }\n  - { name: nic, kind: nic, memory: 16 KiB, count: 2 }'), 'g.yaml')) as ScenarioError;
  t.match(e2.message, /devices\[1\] \(nic0 of count 2\)\.memory: got 16384; a nic needs at least 262144 bytes/);
  t.match(e2.message, /devices\[1\] \(nic1 of count 2\)\.memory/);
  const e3 = t.throws(() => parseScenario(file('  - { name: nic, kind: nic, memory: 256 KiB, count: 3000 }\n  - { name: acc, kind: accelerator, count: 3000 }'), 'g.yaml')) as ScenarioError;
  t.match(e3.message, /devices: got 6000 devices; at most \d+/, 'the device limit counts the expanded list');
});
