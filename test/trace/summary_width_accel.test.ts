// Human summaries of the accelerator scenarios (both modes and --compare) fit 100 columns.
import t from 'tap';
import { checkScenario } from './summary_width.js';

for (const f of ['scenarios/accel-progress.yaml', 'scenarios/accel-nic-stream.yaml', 'scenarios/hmm-peer.yaml']) {
  t.test(f, (t) => checkScenario(t, f));
}
