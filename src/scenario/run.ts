/**
 * Runs a validated scenario: builds the machine it describes, measures the
 * memcpy baseline, runs the workload, and always tears the machine down —
 * whatever failed, no worker outlives the run.
 */
import type { Machine, MachineSpec } from '../devices/machine.js';
import { Machine as MachineImpl } from '../devices/machine.js';
import { measureMemcpy, type MemcpyResult } from '../workloads/memcpy_baseline.js';
import { colourParams, runCameraChain, type ChainResult } from '../workloads/camera_chain/run.js';
import type { Scenario } from './schema.js';

export interface RunOptions {
  readonly seed?: number;
  readonly frames?: number;
}

export interface RunReport {
  readonly scenario: string;
  readonly description: string;
  readonly workload: string;
  readonly mode: string;
  readonly seed: number;
  readonly width: number;
  readonly height: number;
  readonly memcpy: MemcpyResult;
  readonly result: ChainResult;
}

/** The machine a scenario describes; device props are what the worker models take. */
export function machineSpec(sc: Scenario): MachineSpec {
  return {
    ramBytes: sc.machine.ram,
    timeoutMs: sc.machine.timeoutMs,
    devices: sc.devices.map((d) => ({
      name: d.name,
      kind: d.kind,
      memBytes: d.memory,
      barBytes: d.bar,
      props: d.kind === 'colour-correction' ? { ...d.props, ...colourParams(d.props) } : d.props,
    })),
  };
}

/**
 * Runs the scenario; throws DeviceError / LimitError on failure, after
 * teardown. Data mismatches are in the report (assertChainExact turns them
 * into a VerifyError) so the summary can still be printed.
 */
export async function runScenario(sc: Scenario, opts: RunOptions = {}): Promise<RunReport> {
  const seed = opts.seed ?? sc.seed;
  const w = { ...sc.workload, frames: opts.frames ?? sc.workload.frames };
  const memcpy = measureMemcpy(1024 * 1024, 128 * 1024 * 1024);
  const machine: Machine = await MachineImpl.create(machineSpec(sc));
  let result: ChainResult;
  try {
    result = await runCameraChain(machine, w, seed);
  } finally {
    await machine.shutdown();
  }
  return { scenario: sc.name, description: sc.description, workload: w.kind, mode: w.mode, seed, width: w.width, height: w.height, memcpy, result };
}
