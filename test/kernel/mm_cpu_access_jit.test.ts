// Mm.cpuAccessLocked (the CPU's loads and stores in a workload's setup and checks) keeps the code
// optimized in --compare's p2p warm-up through the bounce warm-up, so it does not compile again
// inside p2p's timed window. compareScenario's order (warm p2p, warm bounce, timed p2p) in a child
// node with --trace-opt --trace-deopt. Before the change a callback per direction ("wrong feedback
// cell") and a store's PTE compare never reached in p2p's warm-up ("Insufficient type feedback for
// compare operation") deoptimized it in bounce's warm-up, and it recompiled (6-27 ms) in timed p2p.
import t from 'tap';
import { childNode } from '../fixtures/child_node.js';
import { pathToFileURL } from 'node:url';

const dist = (p: string) => pathToFileURL(`${process.cwd()}/dist/src/${p}.js`).href;

t.test('hmm-peer warm p2p, warm bounce, timed p2p: cpuAccessLocked is optimized once, in the first', { timeout: 300000 }, async (t) => {
  const script = `
    import { writeSync } from 'node:fs';
    const { runScenario } = await import('${dist('scenario/run')}');
    const { loadScenarioFile } = await import('${dist('scenario/load')}');
    const { DeviceWorkerPool } = await import('${dist('devices/worker_pool')}');
    const sc = await loadScenarioFile('scenarios/hmm-peer.yaml');
    const pools = { p2p: new DeviceWorkerPool(), bounce: new DeviceWorkerPool() };
    try {
      for (const [phase, mode] of [['warm-p2p', 'p2p'], ['warm-bounce', 'bounce'], ['timed-p2p', 'p2p']]) {
        writeSync(1, '@@phase ' + phase + '\\n');
        const r = await runScenario(sc, { mode, pool: pools[mode] });
        writeSync(1, '@@clean ' + r.accounting.checks.every((c) => c.ok) + '\\n');
      }
    } finally { await Promise.all([pools.p2p.close(), pools.bounce.close()]); }`;
  const out = await childNode(script, ['--trace-deopt', '--trace-opt'], { timeoutMs: 240000, maxBuffer: 256 * 1024 * 1024 });
  t.equal(out.code, 0, out.stderr.trim().slice(-2000));
  const lines = out.stdout.split('\n');
  t.same(lines.filter((l) => l.startsWith('@@clean')), Array(3).fill('@@clean true'), 'every run passed its checks');
  const bounceAt = lines.indexOf('@@phase warm-bounce');
  const mine = (l: string) => /(JSFunction|SharedFunctionInfo) cpuAccessLocked[ >]/.test(l);
  const optimized = (l: string) => l.startsWith('[completed optimizing') && mine(l);
  t.ok(lines.slice(0, bounceAt).some(optimized), 'the p2p warm-up optimized cpuAccessLocked');
  const later = lines.slice(bounceAt).filter((l) => mine(l) && (optimized(l) || l.includes('bailout') || l.includes('marking dependent code')));
  t.same(later.map((l) => l.replace(/0x[0-9a-f]+ /g, '').slice(0, 160)), [], 'no deopt or recompile of cpuAccessLocked after the p2p warm-up');
});

// DevMem.ownerFlush is the owner binding itself (a prototype method), not a closure made per
// binding: with a closure every pooled run's migration met a new call target and deoptimized
// invalidateForMigration ("wrong call target") inside its window.
t.test('three pooled hmm-peer p2p runs: invalidateForMigration never meets a new ownerFlush call target', { timeout: 300000 }, async (t) => {
  const script = `
    import { writeSync } from 'node:fs';
    const { runScenario } = await import('${dist('scenario/run')}');
    const { loadScenarioFile } = await import('${dist('scenario/load')}');
    const { DeviceWorkerPool } = await import('${dist('devices/worker_pool')}');
    const sc = await loadScenarioFile('scenarios/hmm-peer.yaml');
    const pool = new DeviceWorkerPool();
    try {
      for (let i = 0; i < 3; i++) {
        const r = await runScenario(sc, { mode: 'p2p', pool });
        writeSync(1, '@@clean ' + r.accounting.checks.every((c) => c.ok) + '\\n');
      }
    } finally { await pool.close(); }`;
  const out = await childNode(script, ['--trace-deopt', '--trace-opt'], { timeoutMs: 240000, maxBuffer: 256 * 1024 * 1024 });
  t.equal(out.code, 0, out.stderr.trim().slice(-2000));
  const lines = out.stdout.split('\n');
  t.same(lines.filter((l) => l.startsWith('@@clean')), Array(3).fill('@@clean true'), 'every run passed its checks');
  t.ok(lines.some((l) => l.startsWith('[completed optimizing') && l.includes('<JSFunction invalidateForMigration ')), 'invalidateForMigration was optimized');
  const wrong = lines.filter((l) => l.includes('reason: wrong call target') && l.includes('<JSFunction invalidateForMigration '));
  t.same(wrong.length, 0, `no 'wrong call target' deopt of invalidateForMigration (${wrong.length})`);
});
