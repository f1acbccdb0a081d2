/**
 * The rig the three accelerator workloads (accel-progress,
 * accel-nic-stream, hmm-peer) share: host queues on the accelerator and
 * the NIC, a booted kernel, one process both devices may be bound to, and
 * one CommandRunner. close() unbinds in reverse order.
 */
import type { Device } from '../devices/machine.js';
import { ACC_HOST_QID } from '../devices/accelerator_abi.js';
import { NIC_HOST_QID } from '../devices/nic_abi.js';
import { HostQueue } from '../drivers/host_queue.js';
import { ImporterBinding } from '../drivers/importer_binding.js';
import type { Kernel } from '../kernel/kernel.js';
import type { Mm } from '../kernel/mm.js';
import { CommandRunner } from './command_runner.js';
import { bootKernel, processMm, startMachine } from './kernel_boot.js';
import type { WorkloadContext } from './workload.js';

export interface AccelNicRig {
  readonly acc: Device;
  readonly nic: Device;
  readonly accQ: HostQueue;
  readonly nicQ: HostQueue;
  readonly kernel: Kernel;
  readonly mm: Mm;
  readonly runner: CommandRunner;
  /** The NIC is always bound (it reads by VA); the accelerator only when `bindAccelerator`. */
  readonly nicB: ImporterBinding;
  readonly accB: ImporterBinding | null;
  close(): Promise<void>;
}

export async function accelNicRig(ctx: WorkloadContext, names: { accelerator: string; nic: string; process: string }, queueDepth: number, bindAccelerator: boolean): Promise<AccelNicRig> {
  const { machine } = ctx;
  const acc = machine.device(names.accelerator);
  const nic = machine.device(names.nic);
  const accQ = await HostQueue.create(machine, acc, ACC_HOST_QID, queueDepth);
  const nicQ = await HostQueue.create(machine, nic, NIC_HOST_QID, queueDepth);
  await startMachine(ctx);
  const kernel = await bootKernel(ctx);
  const mm = processMm(ctx, kernel, names.process);
  const nicB = await ImporterBinding.bind(kernel, names.nic, mm);
  const accB = bindAccelerator ? await ImporterBinding.bind(kernel, names.accelerator, mm) : null;
  return {
    acc,
    nic,
    accQ,
    nicQ,
    kernel,
    mm,
    runner: new CommandRunner(machine, kernel),
    nicB,
    accB,
    async close() {
      await accB?.close();
      await nicB.close();
    },
  };
}
