/**
 * A driver's kind-specific device command (src/devices/protocol.ts): sent
 * through the device's handle, raced against the machine's failure, and a
 * refusal turned into PeerVmaError(errno, driver, the device's message,
 * with the kernel's line when a page request it refused is the reason:
 * `refusals`, the device's log when it is bound, PageRequestRefusals.explain).
 */
import { PeerVmaError } from '../errors.js';
import type { Device, Machine } from '../devices/machine.js';
import type { DeviceCmd, DeviceOk, DeviceOp } from '../devices/protocol.js';
import type { PageRequestRefusals } from '../kernel/page_request_refusals.js';

export async function deviceCmdOk<O extends DeviceOp>(machine: Machine, dev: Device, who: string, cmd: DeviceCmd<O>, refusals?: Pick<PageRequestRefusals, 'explain'>): Promise<DeviceOk<O>> {
  const r = await machine.race(dev.handle.cmd(cmd));
  if (r.errno !== 0) throw new PeerVmaError(r.errno, who, refusals ? refusals.explain(r.message) : r.message);
  return r;
}
