/**
 * Device groups: a `devices:` entry with `count: N` stands for N devices
 * named `<name>0` .. `<name>N-1`, otherwise alike (`{ name: cam, kind:
 * camera, count: 16 }` is cam0 .. cam15). The loader expands groups before
 * the schema walks the list, so every later check sees plain devices; the
 * messages about an expanded device are mapped back to the entry the user
 * wrote ("devices[0] (cam5 of count 16).memory: ...").
 */
import { MAX_DEVICE_WORKERS } from '../devices/limits.js';

export interface ExpandedDevices {
  /** The raw scenario with every group expanded. */
  readonly raw: unknown;
  readonly problems: string[];
  /** Rewrites `devices[k]` in a message to the entry written in the file. */
  mapMessage(m: string): string;
}

function isRecord(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

const identity: ExpandedDevices = { raw: undefined, problems: [], mapMessage: (m) => m };

/** Expands the `count:` entries of raw.devices (left as they are when there are none). */
export function expandDeviceGroups(raw: unknown): ExpandedDevices {
  if (!isRecord(raw) || !Array.isArray(raw.devices) || !raw.devices.some((d) => isRecord(d) && 'count' in d)) return { ...identity, raw };
  const out: unknown[] = [];
  const origin: { index: number; note: string | null }[] = [];
  const problems: string[] = [];
  raw.devices.forEach((d: unknown, i: number) => {
    if (!isRecord(d) || !('count' in d)) {
      out.push(d);
      origin.push({ index: i, note: null });
      return;
    }
    const { count, ...dev } = d;
    if (typeof count !== 'number' || !Number.isInteger(count) || count < 1 || count > MAX_DEVICE_WORKERS) {
      problems.push(`devices[${i}].count: got ${JSON.stringify(count)}; expected a whole number of devices from 1 to ${MAX_DEVICE_WORKERS}`);
      return;
    }
    if (typeof dev.name !== 'string') {
      problems.push(`devices[${i}].name: got ${JSON.stringify(dev.name)}; a group (count: ${count}) needs a name prefix`);
      return;
    }
    for (let k = 0; k < count; k++) {
      // A copy each: a device's props are its own (a test knob on cc5 is not on cc4).
      out.push({ ...structuredClone(dev), name: `${dev.name}${k}` });
      origin.push({ index: i, note: `${dev.name}${k} of count ${count}` });
    }
  });
  return {
    raw: { ...raw, devices: out },
    problems,
    mapMessage: (m) =>
      m.replace(/\bdevices\[(\d+)\]/g, (all, k: string) => {
        const o = origin[Number(k)];
        return o ? `devices[${o.index}]${o.note ? ` (${o.note})` : ''}` : all;
      }),
  };
}
