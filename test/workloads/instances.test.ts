// runInstances (src/workloads/instances.ts) without devices: instances run at once, share one
// boot, meet at quiesce(), get their own seeds, and their transfers are priced together in
// one bandwidth model (two bounces through one root port take twice as long as one); a
// failing instance does not hold the others at quiesce().
import t from 'tap';
import { gpuBox } from '../../src/hw/fabric_load.js';
import { quiesce } from '../../src/workloads/kernel_boot.js';
import { instanceSeed, runInstances } from '../../src/workloads/instances.js';
import { NO_INVALIDATIONS, type Accounting, type WorkloadContext } from '../../src/workloads/workload.js';

const { fabric } = gpuBox({ gpus: 4, fanout: 4 });
const ctx = { machine: null, fabric, seed: 7, mode: 'bounce', kernels: [] } as unknown as WorkloadContext;
const MiB = 1024 * 1024;

/** An instance that prices one bounce of 64 MiB from src to dst and reports the seed it got. */
function fake(seeds: number[]) {
  return async (c: WorkloadContext, w: { src: string; dst: string }): Promise<Accounting> => {
    seeds.push(c.seed);
    await quiesce(c);
    const modeledSeconds = c.fabric.modelFlows([{ id: 'x', src: w.src, dst: w.dst, bytes: 64 * MiB, via: 'bounce' }]).makespan;
    return { payloadBytes: 64 * MiB, ramBytes: 128 * MiB, bounceBytes: 128 * MiB, p2pBytes: 0, hostInterventions: 1, invalidations: NO_INVALIDATIONS, refaults: 0, wallMs: 10, modeledSeconds, devices: [], checks: [{ name: 'data', ok: true, detail: 'ok' }], extra: { 'per IO': 2, frames: 3, size: 'same' } };
  };
}

t.test('merged: counts add up, transfers priced together, own seeds', async (t) => {
  const seeds: number[] = [];
  const one = await runInstances(ctx, [{ label: 'a', w: { src: 'gpu0', dst: 'gpu1' } }], fake([]));
  const two = await runInstances(
    ctx,
    [
      { label: 'a', w: { src: 'gpu0', dst: 'gpu1' } },
      { label: 'b', w: { src: 'gpu2', dst: 'gpu3' } },
    ],
    fake(seeds),
  );
  t.equal(two.merged.payloadBytes, 128 * MiB);
  t.equal(two.merged.hostInterventions, 2);
  t.equal(two.each[0].modeledSeconds, one.merged.modeledSeconds, 'alone, each bounce runs at the root port rate');
  t.ok(Math.abs(two.merged.modeledSeconds - 2 * one.merged.modeledSeconds) < 1e-12, 'together they share the root port: twice the time');
  t.same(seeds.sort(), [7, instanceSeed(7, 1)].sort(), 'instance 0 keeps the seed, instance 1 gets its own');
  t.same(two.merged.extra, { instances: '2 (2 passed every data check)', 'per IO': 2, frames: 6, size: 'same' }, 'numbers add up, ratios average');
  t.equal(two.merged.checks[0].detail, '2 of 2 instances pass (0-1); instance 0: ok');
});

t.test('a failing instance releases the others waiting at quiesce()', async (t) => {
  const run = (c: WorkloadContext, w: { fail: boolean }) => (w.fail ? Promise.reject(new Error('instance broke')) : quiesce(c).then(() => fake([])(c, { src: 'gpu0', dst: 'gpu1' })));
  await t.rejects(runInstances(ctx, [{ label: 'ok', w: { fail: false } }, { label: 'bad', w: { fail: true } }], run), /instance broke/);
});
