/**
 * Keys every workload shares: which path its data takes, and what to do
 * when the topology does not allow that path.
 */
import { z } from 'zod';

export const deviceName = z.string().regex(/^[a-z][a-z0-9_-]*$/, 'expected a device name');

export function modeFields(defaultMode: 'p2p' | 'bounce') {
  return {
    mode: z.enum(['p2p', 'bounce']).default(defaultMode).describe('p2p: device to device; bounce: through system RAM'),
    fallback: z.enum(['refuse', 'bounce']).default('refuse').describe('when the topology forbids P2P: refuse to run, or run in bounce mode and say so'),
  };
}
