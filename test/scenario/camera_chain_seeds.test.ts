// Seeds are u32 everywhere: the camera (which gets the seed through a 32-bit ring word)
// and the checker render the same scene for any u32 seed, so the data checks pass at
// the edges (0, 2^31, 2^32-1), where a float product of the seed used to lose bits.
import t from 'tap';
import { runScenario } from '../../src/scenario/run.js';
import { renderPattern } from '../../src/devices/models/frame_pattern.js';
import { patternReference } from '../../src/workloads/reference/frame_pattern.js';
import { details, smallChain } from '../fixtures/camera_chain.js';

const SEEDS = [0, 2 ** 31, 2 ** 32 - 1];

t.test('the scene is the same whether the seed is read as u32 or as the i32 of a ring word', async (t) => {
  for (const seed of SEEDS) {
    const a = new Uint32Array(64);
    const b = new Uint32Array(64);
    const ref = new Uint32Array(64);
    renderPattern(a, seed, 3, 0, 8);
    renderPattern(b, seed | 0, 3, 0, 8);
    patternReference(ref, seed, 3, 8);
    t.same(a, b, `camera, seed ${seed}`);
    t.same(ref, b, `checker (u32) and camera (i32), seed ${seed}`);
  }
});

t.test('the camera chain checks pass for seeds 0, 2^31 and 2^32-1', async (t) => {
  const s = await smallChain((s) => Object.assign(s.workload!, { width: 64, height: 32 }));
  for (const seed of SEEDS) {
    const r = await runScenario(s, { seed, frames: 2 });
    t.equal(r.seed, seed);
    t.same(details(r), [
      [true, '2 of 2 frames'],
      [true, '1 importer(s) checked'],
    ], `seed ${seed}`);
  }
});
