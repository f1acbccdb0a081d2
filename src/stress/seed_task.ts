/**
 * piscina task: one seed of a sweep, on its own machine (the task's thread
 * spawns the seed's device workers). Returns the seed's StressReport.
 */
import { runStress, type StressOptions } from './run.js';
import type { StressReport } from './report.js';

export default async function seedTask(o: Omit<StressOptions, 'onStep'>): Promise<StressReport> {
  return runStress(o);
}
