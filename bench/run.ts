/**
 * `npm run bench`: the baselines and the emulator's figures, measured in
 * one run, printed as a table and written as JSON under bench/results/.
 * Every emulator figure is given as a ratio to a baseline of the same run
 * (DESIGN.md section 7). Not a test: nothing here asserts a speed.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import os from 'node:os';
import Table from 'cli-table3';
import { loadScenarioFile } from '../src/scenario/load.js';
import { compareScenario } from '../src/scenario/run.js';
import { throughput } from '../src/trace/summary.js';
import { measureMemcpy } from '../src/workloads/memcpy_baseline.js';
import { pingPong } from './pingpong.js';
import { benchInvalidation } from './invalidation.js';

const root = fileURLToPath(new URL(import.meta.url.includes('/dist/') ? '../../' : '../', import.meta.url));
const MB = 1e6;

interface Row {
  readonly name: string;
  readonly value: number;
  readonly unit: string;
  readonly baseline?: string;
  readonly ratio?: number;
}

async function main(): Promise<void> {
  const rows: Row[] = [];
  const memcpy = [4096, 64 * 1024, 1024 * 1024].map((chunk) => measureMemcpy(chunk));
  for (const m of memcpy) rows.push({ name: `SAB memcpy, 1 thread, ${m.chunk / 1024} KiB chunks`, value: m.rate / MB, unit: 'MB/s' });
  const base = memcpy[2];

  const pp = await pingPong('wait', 20000);
  const ppa = await pingPong('waitAsync', 5000);
  rows.push({ name: 'Atomics ping-pong main<->worker, main in Atomics.wait', value: pp.roundTripUs, unit: 'us/round trip' });
  rows.push({ name: 'Atomics ping-pong main<->worker, main in waitAsync', value: ppa.roundTripUs, unit: 'us/round trip', baseline: 'ping-pong (wait)', ratio: ppa.roundTripUs / pp.roundTripUs });

  for (const inv of await benchInvalidation()) {
    rows.push({ name: `invalidation round trip, one idle importer: ${inv.name} (p50 ${inv.p50Us} us, p99 ${inv.p99Us} us)`, value: inv.roundTripUs, unit: 'us', baseline: 'ping-pong (waitAsync)', ratio: inv.roundTripUs / ppa.roundTripUs });
  }

  const sc = await loadScenarioFile(`${root}scenarios/camera-chain.yaml`);
  const chain = await compareScenario(sc, { frames: 32 });
  for (const r of chain) {
    const rate = throughput(r);
    const a = r.accounting;
    rows.push({ name: `camera chain (${r.mode}) ${a.extra['frame size']}, ${a.extra.frames} frames, verified`, value: rate / MB, unit: 'MB/s', baseline: 'memcpy 1 MiB', ratio: rate / base.rate });
    rows.push({ name: `  modeled PCIe (${r.mode})`, value: a.payloadBytes / a.modeledSeconds / MB, unit: 'MB/s virtual', baseline: 'memcpy 1 MiB', ratio: a.payloadBytes / a.modeledSeconds / base.rate });
    for (const d of a.devices) {
      const bytes = d.bytesFromRam + d.bytesToRam + d.bytesFromPeer + d.bytesToPeer;
      rows.push({ name: `  ${d.device} (${r.mode}): DMA ${d.dmaMs.toFixed(1)} ms, compute ${d.computeMs.toFixed(1)} ms`, value: bytes / MB / (d.dmaMs / 1000), unit: 'MB/s while in DMA', baseline: 'memcpy 1 MiB', ratio: bytes / (d.dmaMs / 1000) / base.rate });
    }
  }
  rows.push({ name: 'camera chain p2p / bounce throughput', value: throughput(chain[0]) / throughput(chain[1]), unit: 'x', baseline: 'bounce, same run' });

  const table = new Table({ head: ['measurement', 'value', 'unit', 'vs', 'ratio'], style: { head: [], border: [] } });
  for (const r of rows) table.push([r.name, r.value.toFixed(2), r.unit, r.baseline ?? '', r.ratio === undefined ? '' : r.ratio.toFixed(3)]);
  process.stdout.write(table.toString() + '\n');

  const out = { date: new Date().toISOString(), host: { cpus: os.cpus().length, node: process.version }, rows, memcpy, pingPong: [pp, ppa], chain: chain.map((r) => ({ ...r, throughput: throughput(r) })) };
  mkdirSync(`${root}bench/results`, { recursive: true });
  const file = `${root}bench/results/bench-${out.date.replace(/[:.]/g, '-')}.json`;
  writeFileSync(file, JSON.stringify(out, null, 2));
  process.stdout.write(`results: ${file}\n`);
}

await main();
