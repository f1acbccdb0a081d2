import { loadScenarioFile } from './src/scenario/load.js';
import { runScenario } from './src/scenario/run.js';
const s = await loadScenarioFile('scenarios/camera-chain.yaml');
Object.assign(s.workload!, { width: 200, height: 150, frames: 6, buffers: 2 });
Object.assign(s.devices[1], { memory: 1024 * 1024, bar: 128 * 1024 });
for (const mode of ['p2p', 'bounce', 'p2p'] as const) {
const t0 = performance.now(); const c0 = process.cpuUsage();
await runScenario(s, { mode });
const c = process.cpuUsage(c0);
console.log('run', mode, (performance.now() - t0).toFixed(0), 'cpu user', (c.user/1000).toFixed(0), 'sys', (c.system/1000).toFixed(0));
}
