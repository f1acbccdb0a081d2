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
import { compareScenario, type RunReport } from '../src/scenario/run.js';
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
    rows.push({ name: `${inv.name} (p50 ${inv.p50Us} us, p99 ${inv.p99Us} us)`, value: inv.roundTripUs, unit: 'us', baseline: 'ping-pong (waitAsync)', ratio: inv.roundTripUs / ppa.roundTripUs });
  }

  const compared: Record<string, RunReport[]> = {};
  for (const [name, frames] of [['camera-chain', 32], ['nic-nvme-queue', undefined]] as const) {
    const sc = await loadScenarioFile(`${root}scenarios/${name}.yaml`);
    const pair = await compareScenario(sc, { frames });
    compared[name] = pair;
    for (const r of pair) {
      const rate = throughput(r);
      const a = r.accounting;
      rows.push({ name: `${name} (${r.mode}), data verified`, value: rate / MB, unit: 'MB/s', baseline: 'memcpy 1 MiB', ratio: rate / base.rate });
      for (const d of a.devices) {
        const bytes = d.bytesFromRam + d.bytesToRam + d.bytesFromPeer + d.bytesToPeer;
        if (d.dmaMs > 0) rows.push({ name: `  ${d.device} (${r.mode}): DMA ${d.dmaMs.toFixed(1)} ms, compute ${d.computeMs.toFixed(1)} ms`, value: bytes / MB / (d.dmaMs / 1000), unit: 'MB/s while in DMA', baseline: 'memcpy 1 MiB', ratio: bytes / (d.dmaMs / 1000) / base.rate });
      }
    }
    const [p, b] = pair;
    rows.push({ name: `${name}: p2p / bounce, real throughput`, value: throughput(p) / MB, unit: 'MB/s (p2p)', baseline: 'bounce, same run', ratio: throughput(p) / throughput(b) });
    // Modeled PCIe time is virtual: compared only with the other mode's modeled time, never with memcpy.
    rows.push({ name: `${name}: p2p / bounce, modeled PCIe time`, value: p.accounting.modeledSeconds * 1e6, unit: 'us virtual (p2p)', baseline: 'bounce, modeled', ratio: p.accounting.modeledSeconds / b.accounting.modeledSeconds });
  }

  const table = new Table({ head: ['measurement', 'value', 'unit', 'vs', 'ratio'], style: { head: [], border: [] } });
  for (const r of rows) table.push([r.name, r.value.toFixed(2), r.unit, r.baseline ?? '', r.ratio === undefined ? '' : r.ratio.toFixed(3)]);
  process.stdout.write(table.toString() + '\n');

  const out = { date: new Date().toISOString(), host: { cpus: os.cpus().length, node: process.version }, rows, memcpy, pingPong: [pp, ppa], compared: Object.fromEntries(Object.entries(compared).map(([k, v]) => [k, v.map((r) => ({ ...r, throughput: throughput(r) }))])) };
  mkdirSync(`${root}bench/results`, { recursive: true });
  const file = `${root}bench/results/bench-${out.date.replace(/[:.]/g, '-')}.json`;
  writeFileSync(file, JSON.stringify(out, null, 2));
  process.stdout.write(`results: ${file}\n`);
}

await main();
