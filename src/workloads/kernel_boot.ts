/**
 * Boots the kernel for a workload run: the P2P policy is the fabric's
 * verdict (Fabric.mapType under the scenario's policy mode, so exporters
 * refuse exactly what the topology forbids), and the IOMMU is on for the
 * devices whose root complex has it on.
 */
import { Kernel } from '../kernel/kernel.js';
import type { P2pPolicy } from '../kernel/p2p_map.js';
import type { Fabric } from '../hw/fabric.js';
import type { WorkloadContext } from './workload.js';

export function fabricPolicy(fabric: Fabric): P2pPolicy {
  return (provider, client) => {
    const v = fabric.mapType(provider.name, client.name);
    return { map: v.map, distance: v.distance, reason: v.reason };
  };
}

export function bootKernel(ctx: WorkloadContext, opts: { check?: boolean } = {}): Kernel {
  const iommu = ctx.machine.devices.map((d) => d.spec.name).filter((n) => ctx.fabric.iommuEnabledFor(n));
  return Kernel.boot(ctx.machine, { policy: fabricPolicy(ctx.fabric), iommu, check: opts.check ?? true });
}
