// Human summaries of the camera-chain scenarios (both modes and --compare) fit 100 columns.
import t from 'tap';
import { checkScenario } from './summary_width.js';

for (const f of ['scenarios/camera-chain.yaml', 'scenarios/camera-chain-final.yaml', 'scenarios/camera-chain-iommu.yaml']) {
  // Frames shrunk to 320x180: the layout does not depend on the frame size, the test time does.
  t.test(f, (t) => checkScenario(t, f, (s) => Object.assign(s.workload!, { width: 320, height: 180 })));
}
