/**
 * Boots the kernel for a workload run: the P2P policy is the fabric's
 * verdict (Fabric.mapType under the scenario's policy mode, so exporters
 * refuse exactly what the topology forbids), and the IOMMU is on for the
 * devices whose root complex has it on.
 */
import { Kernel } from '../kernel/kernel.js';
import { Barrier } from './barrier.js';
import { deviceQuery } from './command_runner.js';
import type { P2pPolicy } from '../kernel/kernel_types.js';
import type { Fabric } from '../hw/fabric.js';
import type { Mm } from '../kernel/mm.js';
import type { Check, SharedBoot, WorkloadContext } from './workload.js';

/** What `instances` instances share; each must call quiesce() once (runInstances does it for one that fails). */
export function sharedBoot(instances: number, fabric: Fabric): SharedBoot {
  const barrier = new Barrier(instances);
  return {
    started: null,
    kernel: null,
    mms: new Map(),
    fabric,
    quiesce: () => barrier.pass(),
  };
}

/** Waits until every instance of the run reached this point (at once when it runs alone). */
export function quiesce(ctx: WorkloadContext): Promise<void> {
  return ctx.boot ? ctx.boot.quiesce() : Promise.resolve();
}

/** Starts every device of the machine, once per run (Machine.start may not be called twice). */
export function startMachine(ctx: WorkloadContext): Promise<void> {
  if (!ctx.boot) return ctx.machine.start();
  return (ctx.boot.started ??= ctx.machine.start());
}

/** The process `name` of the run: one Mm per name when instances share a boot, a new one otherwise. */
export function processMm(ctx: WorkloadContext, kernel: Kernel, name: string): Mm {
  if (!ctx.boot) return kernel.createMm();
  let mm = ctx.boot.mms.get(name);
  if (!mm) ctx.boot.mms.set(name, (mm = kernel.createMm()));
  return mm;
}

export function fabricPolicy(fabric: Fabric): P2pPolicy {
  return (provider, client) => {
    const v = fabric.mapType(provider.name, client.name);
    return { map: v.map, distance: v.distance, reason: v.reason };
  };
}

/** Boots the run's kernel (once per run when instances share a boot: they all get the same one). */
export function bootKernel(ctx: WorkloadContext, opts: { check?: boolean } = {}): Promise<Kernel> {
  if (!ctx.boot) return bootOnce(ctx, opts);
  return (ctx.boot.kernel ??= bootOnce(ctx, opts));
}

async function bootOnce(ctx: WorkloadContext, opts: { check?: boolean }): Promise<Kernel> {
  const fabric = ctx.boot?.fabric ?? ctx.fabric;
  const iommu = ctx.machine.devices.map((d) => d.spec.name).filter((n) => fabric.iommuEnabledFor(n));
  const kernel = Kernel.boot(ctx.machine, { policy: fabricPolicy(fabric), iommu, check: opts.check ?? true });
  ctx.kernels.push(kernel);
  // Every device behind an IOMMU translates all its DMA, bound to a process or not.
  for (const name of iommu) {
    const dev = ctx.machine.device(name);
    await deviceQuery(ctx.machine, dev, { op: 'iommu-attach', domain: kernel.domain(name)!.sab });
  }
  return kernel;
}

/**
 * The safety invariant as a data check (DESIGN.md section 6): no device
 * used a stale or remapped translation (the checker's violations), and
 * every invalidation was acked in time (the invalidators' counters: with
 * the IOMMU off a missed ack is a kernel violation, with it on the device
 * was fenced). A run that breaks it fails, whatever its data checks say.
 */
export function safetyCheck(kernels: readonly Kernel[]): Check {
  const problems: string[] = [];
  let importers = 0;
  for (const k of kernels) {
    for (const src of k.safetySources) {
      importers++;
      const v = src.violations();
      if (v.count > 0) problems.push(`${src.name}: ${v.count} violation(s) (${[...new Set(v.records.map((r) => r.kind))].join(', ')})`);
    }
    for (const c of k.invalidatorCounters()) {
      if (c.timedOut === 0) continue;
      problems.push(`${c.device}: ${c.timedOut} invalidation(s) not acked in time (${c.fenced ? 'fenced off its IOMMU domain' : 'IOMMU off: safety violation ack-timeout'})`);
    }
  }
  return {
    name: 'safety: no stale or remapped access, every invalidation acked',
    ok: problems.length === 0,
    detail: problems.length === 0 ? `${importers} importer(s) checked` : problems.join('\n'),
  };
}
