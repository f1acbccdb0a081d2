// Shared by the summary_width_*.test.ts files (split so each file takes seconds):
// runs a shipped scenario small in both modes and checks every human line of
// both summaries and of the comparison against the width and wording rules.
import type { Test } from 'tap';
import { loadScenarioFile } from '../../src/scenario/load.js';
import { compareScenario, runScenario, type RunReport } from '../../src/scenario/run.js';
import type { Scenario } from '../../src/scenario/schema.js';
import { formatComparison, formatSummary, isMachineKey } from '../../src/trace/summary.js';
import { workloadDefs } from '../../src/workloads/registry.js';

export const COLS = 100;

/** Asserts every line of `text` fits COLS columns; names the widest offender. */
export function assertFits(t: Test, text: string, what: string): void {
  const wide = text.split('\n').filter((l) => [...l].length > COLS);
  t.same(wide, [], `${what}: every line fits ${COLS} columns`);
}

/** The summary rules beyond width: no machine keys, a unit on every printed count, the mode's reason. */
export function assertWording(t: Test, r: RunReport, text: string): void {
  const units = workloadDefs[r.workload as keyof typeof workloadDefs].units ?? {};
  for (const [k, v] of Object.entries(r.accounting.extra)) {
    if (isMachineKey(k)) t.notOk(text.includes(`${k} `), `${r.scenario}: machine key ${k} stays out of the human summary`);
    else if (typeof v === 'number') t.ok(units[k], `${r.scenario}: "${k}" (${v}) has a unit`);
  }
  t.match(text, /\nrefaults\s+\d+\s+pages?\s+faulted\s+in\s+again/, 'refaults in pages, as the README says');
  t.match(text, /\ntime per stage\s+device\s+compute\s+[\d.]+\s+ms,\s+DMA\s+[\d.]+\s+ms,\s+fault\s+wait\s+[\d.]+\s+ms;\s+kernel\s+mapping\s+[\d.]+\s+ms,\s+invalidation/, 'the per-stage line');
  if (r.mode === 'p2p') t.match(text, /\nWhy p2p: \S+ -> \S+: (bus-addr|thru-host-bridge),\s+p2pdma:/, "the fabric's reason for p2p is printed");
  if (r.fallback) t.match(text, /\nWhy bounce: [^]*p2pdma:/, "the fabric's reason for the fallback is printed");
}

/** Runs `file` small (2 frames / requests / iterations) in both modes and checks the three outputs. */
export async function checkScenario(t: Test, file: string, mutate: (s: Scenario) => void = () => undefined): Promise<void> {
  const sc = await loadScenarioFile(file);
  mutate(sc);
  const [p, b] = await compareScenario(sc, { frames: 2 });
  for (const r of [p, b]) {
    const text = formatSummary(r, COLS);
    assertFits(t, text, `${file} ${r.mode}`);
    assertWording(t, r, text);
  }
  assertFits(t, formatComparison([p, b], COLS), `${file} --compare`);
}

/** Runs `file` in p2p mode with `fallback: bounce` where the topology forbids P2P. */
export async function checkFallback(t: Test, file: string): Promise<void> {
  const sc = await loadScenarioFile(file);
  Object.assign(sc.workload!, { fallback: 'bounce', mode: 'p2p' });
  const r = await runScenario(sc, { frames: 2 });
  t.equal(r.mode, 'bounce', 'fell back to bounce');
  t.ok(r.fallback && r.fallback.length > COLS, 'with a reason longer than a line');
  const text = formatSummary(r, COLS);
  assertFits(t, text, `${file} fallback`);
  assertWording(t, r, text);
}
