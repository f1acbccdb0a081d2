/*
 * Modeled PCIe bandwidth in virtual time: flows over shared resources
 * (link directions, root-complex fabric, system RAM, socket interconnect),
 * max-min fair sharing, event-driven.
 *
 * Mirrors: no kernel function — this is the "hardware" side of DESIGN §7
 * ("modeled PCIe bandwidth", never mixed up with emulator throughput).
 *
 * Model:
 *   - A resource has a capacity in bytes/s. A flow crosses resources with a
 *     weight (how many times its bytes cross it: a bounce writes and then
 *     reads system RAM → weight 2 on the memory resource, crosses the root
 *     complex in and out → weight 2 on the RC fabric).
 *   - A flow may carry its own rate cap (e.g. root-complex P2P efficiency ×
 *     the bottleneck link of its path).
 *   - At every instant the rates are the max-min fair allocation
 *     (progressive filling / water-filling): raise all unfrozen flows'
 *     rates together; when a resource saturates, freeze every flow crossing
 *     it; when a flow reaches its cap, freeze it.
 *   - Events: a flow starts, a flow finishes. Between events rates are
 *     constant, so completion times are exact (up to float rounding).
 *
 * Units: bytes, seconds, bytes/s.
 * Invariants: Σ weight·rate ≤ capacity on every resource at every instant;
 * every flow with a finite path gets a positive rate while active.
 */

export interface BwResource {
  id: string;
  /** bytes/s */
  capacity: number;
  /** Human description ("link 0000:00:01.0 ↓ Gen4 x16"). */
  label?: string;
}

export interface BwHop {
  res: string;
  weight: number;
}

export interface BwFlow {
  id: string;
  bytes: number;
  /** Virtual start time, seconds. */
  start: number;
  hops: BwHop[];
  /** Optional per-flow rate ceiling, bytes/s. */
  cap?: number;
}

export interface BwFlowResult {
  id: string;
  start: number;
  end: number;
  bytes: number;
  /** bytes / (end - start) */
  meanRate: number;
}

export interface BwResourceUsage {
  id: string;
  label?: string;
  capacity: number;
  /** Weighted bytes carried. */
  bytes: number;
  /** bytes / (capacity × makespan), 0..1. */
  utilisation: number;
  /** Highest instantaneous load / capacity. */
  peak: number;
}

export interface BwResult {
  flows: BwFlowResult[];
  resources: BwResourceUsage[];
  /** Time of the last completion minus time of the first start. */
  makespan: number;
}

const EPS = 1e-12;

/**
 * Max-min fair rates for a set of concurrently active flows.
 * Returns rate per flow id (bytes/s); a flow with no hops and no cap gets Infinity.
 */
export function maxMinRates(resources: Map<string, BwResource>, flows: { id: string; hops: BwHop[]; cap?: number }[]): Map<string, number> {
  const rate = new Map<string, number>();
  const remaining = new Map<string, number>();
  for (const r of resources.values()) remaining.set(r.id, r.capacity);
  let unfrozen = flows.filter((f) => {
    for (const h of f.hops) if (!resources.has(h.res)) throw new Error(`bandwidth: flow ${f.id} crosses unknown resource ${h.res}`);
    if (f.hops.length === 0 && f.cap === undefined) {
      rate.set(f.id, Infinity);
      return false;
    }
    return true;
  });
  while (unfrozen.length) {
    // Level at which the next constraint binds.
    const weightOn = new Map<string, number>();
    for (const f of unfrozen) for (const h of f.hops) weightOn.set(h.res, (weightOn.get(h.res) ?? 0) + h.weight);
    let level = Infinity;
    for (const [res, w] of weightOn) if (w > 0) level = Math.min(level, Math.max(0, remaining.get(res)!) / w);
    for (const f of unfrozen) if (f.cap !== undefined) level = Math.min(level, f.cap);
    const saturated = new Set<string>();
    for (const [res, w] of weightOn) if (w > 0 && Math.max(0, remaining.get(res)!) / w <= level * (1 + 1e-12) + EPS) saturated.add(res);
    const freeze = unfrozen.filter(
      (f) => (f.cap !== undefined && f.cap <= level * (1 + 1e-12) + EPS) || f.hops.some((h) => h.weight > 0 && saturated.has(h.res)),
    );
    for (const f of freeze) {
      rate.set(f.id, level);
      for (const h of f.hops) remaining.set(h.res, remaining.get(h.res)! - h.weight * level);
    }
    const frozen = new Set(freeze);
    unfrozen = unfrozen.filter((f) => !frozen.has(f));
  }
  return rate;
}

/** Event-driven simulation of flows with start times; see the file comment. */
export function simulateFlows(resourceList: BwResource[], flows: BwFlow[]): BwResult {
  const resources = new Map(resourceList.map((r) => [r.id, r]));
  const ids = new Set<string>();
  for (const f of flows) {
    if (ids.has(f.id)) throw new Error(`bandwidth: flow id ${f.id} is used twice`);
    ids.add(f.id);
    if (!(f.bytes >= 0) || !(f.start >= 0)) throw new Error(`bandwidth: flow ${f.id} needs bytes ≥ 0 and start ≥ 0`);
  }
  const left = new Map(flows.map((f) => [f.id, f.bytes]));
  const end = new Map<string, number>();
  const carried = new Map(resourceList.map((r) => [r.id, 0]));
  const peak = new Map(resourceList.map((r) => [r.id, 0]));
  const pending = [...flows].sort((a, b) => a.start - b.start);
  const t0 = pending.length ? pending[0].start : 0;
  let now = t0;
  let active: BwFlow[] = [];
  let guard = 0;
  while (pending.length || active.length) {
    if (++guard > 10 * flows.length + 10) throw new Error('bandwidth: simulation did not converge');
    while (pending.length && pending[0].start <= now + EPS) {
      const f = pending.shift()!;
      if (f.bytes === 0) end.set(f.id, f.start);
      else active.push(f);
    }
    if (!active.length) {
      if (pending.length) now = pending[0].start;
      continue;
    }
    const rates = maxMinRates(resources, active);
    // Instantaneous load for peak utilisation.
    const load = new Map<string, number>();
    for (const f of active) for (const h of f.hops) load.set(h.res, (load.get(h.res) ?? 0) + h.weight * rates.get(f.id)!);
    for (const [res, l] of load) peak.set(res, Math.max(peak.get(res)!, l / resources.get(res)!.capacity));
    let dt = Infinity;
    for (const f of active) dt = Math.min(dt, left.get(f.id)! / rates.get(f.id)!);
    if (pending.length) dt = Math.min(dt, pending[0].start - now);
    for (const f of active) {
      const r = rates.get(f.id)!;
      const moved = r === Infinity ? left.get(f.id)! : Math.min(left.get(f.id)!, r * dt);
      left.set(f.id, left.get(f.id)! - moved);
      for (const h of f.hops) carried.set(h.res, carried.get(h.res)! + h.weight * moved);
    }
    now += dt === Infinity ? 0 : dt;
    active = active.filter((f) => {
      if (left.get(f.id)! <= f.bytes * 1e-12) {
        end.set(f.id, now);
        return false;
      }
      return true;
    });
  }
  const makespan = flows.length ? Math.max(...flows.map((f) => end.get(f.id)!)) - t0 : 0;
  return {
    flows: flows.map((f) => {
      const e = end.get(f.id)!;
      return { id: f.id, start: f.start, end: e, bytes: f.bytes, meanRate: e > f.start ? f.bytes / (e - f.start) : Infinity };
    }),
    resources: resourceList.map((r) => ({
      id: r.id,
      label: r.label,
      capacity: r.capacity,
      bytes: carried.get(r.id)!,
      utilisation: makespan > 0 ? carried.get(r.id)! / (r.capacity * makespan) : 0,
      peak: peak.get(r.id)!,
    })),
    makespan,
  };
}
