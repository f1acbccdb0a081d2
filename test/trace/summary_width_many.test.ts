// Human summaries of the many-device scenarios (both modes and --compare) fit 100 columns:
// 16 device rows, merged per-instance check lines, the generated fabric's P2P reasons.
import t from 'tap';
import { checkScenario } from './summary_width.js';

// Frames shrunk to 64x48: the layout does not depend on the frame size, the test time does.
t.test('scenarios/camera-farm.yaml', (t) => checkScenario(t, 'scenarios/camera-farm.yaml', (s) => Object.assign(s.workload!, { width: 64, height: 48 })));
t.test('scenarios/hmm-peer-fanout.yaml', (t) => checkScenario(t, 'scenarios/hmm-peer-fanout.yaml', (s) => Object.assign(s.workload!, { stagePages: 2 })));
