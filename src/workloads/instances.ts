/**
 * Workloads with N instances: one workload definition run N times at once
 * on one machine (N camera pipelines, N NIC -> NVMe pairs, N accelerator ->
 * NIC streams), then reported as one run.
 *
 * Naming: instance i of n uses the devices `<name><i>` (camera `cam` with
 * `pipelines: 4` is cam0..cam3); with n = 1 the names are taken as
 * written, so every single-instance scenario reads as before.
 *
 * What the instances share (SharedBoot, src/workloads/kernel_boot.ts): the
 * machine is started once, one kernel is booted (one IOMMU and invalidation
 * state per device, as on a real machine), and a process named by several
 * instances is one address space. What they do not share: their devices,
 * queues and buffers, and their seed (instanceSeed: each moves its own data).
 *
 * Merging (the same Accounting as one instance, so --compare reads alike):
 * byte and command counts add up; the wall time is the longest instance's
 * timed window (they run at once); the modeled PCIe time prices every
 * instance's transfers together in one bandwidth model, so streams that
 * share a switch uplink or a root complex slow each other down; each data
 * check becomes one line that says which instances passed and names every
 * one that failed, with its detail.
 */
import type { Fabric, FabricFlow } from '../hw/fabric.js';
import { modeledSeconds } from './accounting.js';
import { sharedBoot } from './kernel_boot.js';
import type { Accounting, Check, InvalidationStats, WorkloadContext } from './workload.js';

/** Device (or process) name of instance i of n. */
export function instanceName(name: string, i: number, n: number): string {
  return n === 1 ? name : `${name}${i}`;
}

/**
 * A role key that names a device where a prefix is expected (`camera: cam0`
 * with `pipelines: 2` would mean cam00, cam01): one line saying so, beside
 * the loader's "no such device" lines.
 */
export function prefixProblems(countKey: string, n: number, keys: Readonly<Record<string, string | undefined>>, devices: readonly { name: string }[]): string[] {
  if (n === 1) return [];
  return Object.entries(keys)
    .filter(([, name]) => name !== undefined && devices.some((d) => d.name === name) && !devices.some((d) => d.name === `${name}0`))
    .map(([key, name]) => `workload.${key}: got "${name}", a device; with ${countKey}: ${n} it is the prefix of ${name}0 .. ${name}${n - 1} (write e.g. "${name!.replace(/\d+$/, '')}")`);
}

/** The names of a role over n instances. */
export function instanceNames(name: string, n: number): string[] {
  return Array.from({ length: n }, (_, i) => instanceName(name, i, n));
}

/**
 * The seed of instance i: instance 0 keeps the scenario's, the others get
 * their own, so every instance moves different data and one that received
 * another's (a misrouted frame, a wrong buffer) fails its check.
 */
export function instanceSeed(seed: number, i: number): number {
  return (seed + Math.imul(i, 0x9e3779b9)) >>> 0;
}

/** One instance: the single-instance workload it runs and a label naming it in checks ("cam3 -> cc3"). */
export interface Instance<W> {
  readonly label: string;
  readonly w: W;
}

/** What runInstances hands back besides the merged accounting: every instance's own, in order. */
export interface InstancesResult {
  readonly merged: Accounting;
  readonly each: readonly Accounting[];
}

/** The fabric as an instance sees it: its priced flows are kept (ids prefixed) to be priced again with everyone's. */
export function capturingFabric(fabric: Fabric, prefix: string, out: FabricFlow[][], slot: number): Fabric {
  const f = Object.create(fabric) as Fabric;
  f.modelFlows = (flows) => {
    out[slot] = flows.map((x, i) => ({ ...x, id: `${prefix}:${x.id ?? `flow${i}`}` }));
    return fabric.modelFlows(flows);
  };
  return f;
}

/**
 * Runs every instance at once on ctx's machine (one start, one kernel) and
 * merges their accounting. A runner whose checks read counters another
 * instance can move calls quiesce(ctx) (kernel_boot.ts) before reading. An instance that throws fails the run (the
 * caller's teardown stops the others' devices).
 */
export async function runInstances<W>(ctx: WorkloadContext, instances: readonly Instance<W>[], run: (ctx: WorkloadContext, w: W) => Promise<Accounting>): Promise<InstancesResult> {
  const boot = sharedBoot(instances.length, ctx.fabric);
  const flows: FabricFlow[][] = instances.map(() => []);
  const each = await Promise.all(
    instances.map((inst, i) =>
      run({ ...ctx, boot, seed: instanceSeed(ctx.seed, i), fabric: capturingFabric(ctx.fabric, `i${i}`, flows, i) }, inst.w).catch((e: unknown) => {
        // A failed instance no longer holds the others at quiesce().
        void boot.quiesce();
        throw e;
      }),
    ),
  );
  return { merged: mergeAccounting(ctx.fabric, instances, each, flows.flat()), each };
}

function sum(xs: readonly Accounting[], f: (a: Accounting) => number): number {
  return xs.reduce((t, a) => t + f(a), 0);
}

function mergeInvalidations(xs: readonly InvalidationStats[]): InvalidationStats {
  return {
    sent: xs.reduce((t, x) => t + x.sent, 0),
    acked: xs.reduce((t, x) => t + x.acked, 0),
    maxAckUs: Math.max(0, ...xs.map((x) => x.maxAckUs)),
    // The instances' own p99s, the worst of them: a bound, not the p99 of the union.
    p99AckUs: Math.max(0, ...xs.map((x) => x.p99AckUs)),
    ackWaitMs: xs.reduce((t, x) => t + x.ackWaitMs, 0),
  };
}

/** "0-6, 8-15" for the instance indexes given. */
function ranges(ix: readonly number[]): string {
  const out: string[] = [];
  for (let k = 0; k < ix.length; ) {
    let j = k;
    while (j + 1 < ix.length && ix[j + 1] === ix[j] + 1) j++;
    out.push(j === k ? `${ix[k]}` : `${ix[k]}-${ix[j]}`);
    k = j + 1;
  }
  return out.join(', ');
}

/** One check per check name: which instances passed, and every failing instance named with its detail. */
export function mergeChecks(labels: readonly string[], each: readonly (readonly Check[])[], noun = 'instance'): Check[] {
  const names: string[] = [];
  for (const cs of each) for (const c of cs) if (!names.includes(c.name)) names.push(c.name);
  return names.map((name) => {
    const ok: number[] = [];
    const bad: string[] = [];
    each.forEach((cs, i) => {
      const c = cs.find((x) => x.name === name);
      if (!c) return;
      if (c.ok) ok.push(i);
      else bad.push(`${noun} ${i} (${labels[i]}): FAIL: ${c.detail.replace(/\n/g, '\n    ')}`);
    });
    const first = each.map((cs) => cs.find((x) => x.name === name)).find((c) => c !== undefined)!;
    const passed = `${ok.length} of ${ok.length + bad.length} ${noun}s pass${ok.length > 0 ? ` (${ranges(ok)})` : ''}`;
    return {
      name,
      ok: bad.length === 0,
      detail: bad.length === 0 ? `${passed}; ${noun} 0: ${first.detail}` : `${passed}:\n  ${bad.join('\n  ')}`,
    };
  });
}

/** Numbers add up (a ratio, 'per ...', is averaged); a text figure is kept when every instance says the same, else instance 0's, marked. */
export function mergeExtra(each: readonly Accounting[]): Record<string, number | string> {
  const out: Record<string, number | string> = {};
  for (const key of Object.keys(each[0].extra)) {
    const vals = each.map((a) => a.extra[key]);
    const total = (xs: number[]) => xs.reduce((t, v) => t + v, 0);
    if (vals.every((v) => typeof v === 'number')) out[key] = /\bper /.test(key) ? Number((total(vals as number[]) / vals.length).toFixed(3)) : total(vals as number[]);
    else out[key] = vals.every((v) => v === vals[0]) ? vals[0] : `${String(vals[0])} (instance 0)`;
  }
  return out;
}

function mergeAccounting<W>(fabric: Fabric, instances: readonly Instance<W>[], each: readonly Accounting[], flows: FabricFlow[]): Accounting {
  const labels = instances.map((x) => x.label);
  const checks = mergeChecks(labels, each.map((a) => a.checks));
  const failed = each.filter((a) => a.checks.some((c) => !c.ok)).length;
  return {
    payloadBytes: sum(each, (a) => a.payloadBytes),
    ramBytes: sum(each, (a) => a.ramBytes),
    bounceBytes: sum(each, (a) => a.bounceBytes),
    p2pBytes: sum(each, (a) => a.p2pBytes),
    hostInterventions: sum(each, (a) => a.hostInterventions),
    invalidations: mergeInvalidations(each.map((a) => a.invalidations)),
    refaults: sum(each, (a) => a.refaults),
    wallMs: Math.max(...each.map((a) => a.wallMs)),
    modeledSeconds: modeledSeconds(fabric, flows),
    devices: each.flatMap((a) => a.devices),
    checks,
    extra: {
      instances: `${each.length} (${each.length - failed} passed every data check${failed > 0 ? `, ${failed} failed` : ''})`,
      ...mergeExtra(each),
    },
  };
}
