// Shipped workloads with cooperative run tokens forced on (one token for the whole
// machine: the most contention), in both modes: every data check passes, and the
// machine line reports the setting. Plus the scenario key and its refusals.
import t from 'tap';
import { fileURLToPath } from 'node:url';
import { loadScenarioFile, parseScenario } from '../../src/scenario/load.js';
import { compareScenario } from '../../src/scenario/run.js';

const dir = fileURLToPath(new URL('../../scenarios/', import.meta.url));

for (const [file, frames] of [['camera-chain.yaml', 2], ['nic-nvme-queue.yaml', 16], ['accel-nic-stream.yaml', 2]] as const) {
  t.test(`${file} with one run token: data checks pass in both modes`, async (t) => {
    const sc = await loadScenarioFile(dir + file);
    const reports = await compareScenario(sc, { frames, runTokens: 1 });
    for (const r of reports) {
      t.equal(r.machine.runTokens, 1, `${r.mode}: the machine line reports the token`);
      t.ok(r.machine.deviceLimit >= r.machine.devices, `${r.mode}: the host limit (${r.machine.deviceLimit}) covers the run`);
      for (const c of r.accounting.checks) t.ok(c.ok, `${r.mode}: ${c.name}: ${c.detail}`);
    }
  });
}

t.test('machine.runTokens: auto by default, off, a count; anything else is refused naming the key', async (t) => {
  const base = 'name: x\ndevices:\n  - {name: m0, kind: mirror, memory: 64 KiB}\n';
  t.equal(parseScenario(base, 'x.yaml').machine.runTokens, 'auto');
  t.equal(parseScenario(`${base}machine: {runTokens: off}\n`, 'x.yaml').machine.runTokens, 'off');
  t.equal(parseScenario(`${base}machine: {runTokens: 3}\n`, 'x.yaml').machine.runTokens, 3);
  t.throws(() => parseScenario(`${base}machine: {runTokens: many}\n`, 'x.yaml'), { name: 'ScenarioError', message: /machine\.runTokens/ });
});
