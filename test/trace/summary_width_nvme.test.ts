// Human summaries of nic-nvme-queue (both modes and --compare) and of a `fallback: bounce`
// run, whose fabric reason is over 1000 characters, fit 100 columns.
import t from 'tap';
import { checkFallback, checkScenario } from './summary_width.js';

t.test('scenarios/nic-nvme-queue.yaml', (t) => checkScenario(t, 'scenarios/nic-nvme-queue.yaml'));
t.test('fallback: bounce (camera and engine on two root ports)', (t) => checkFallback(t, 'test/fixtures/scenarios/chain-two-rc.yaml'));

// Every shipped scenario with a workload is in one of the summary_width_*.test.ts files.
t.test('every shipped workload scenario is covered', async (t) => {
  const { readdirSync, readFileSync } = await import('node:fs');
  const shipped = readdirSync('scenarios').filter((f) => f.endsWith('.yaml') && /^workload:/m.test(readFileSync(`scenarios/${f}`, 'utf8')));
  const covered = ['camera', 'accel', 'nvme', 'many'].flatMap((g) => [...readFileSync(`test/trace/summary_width_${g}.test.ts`, 'utf8').matchAll(/'scenarios\/([\w-]+\.yaml)/g)].map((m) => m[1]));
  t.same(shipped.sort(), [...new Set(covered)].sort());
});
