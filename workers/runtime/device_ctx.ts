/**
 * The core of what the runtime gives a device model: its shared memory,
 * the bus, its DMA engine and invalidation port, its properties and its
 * error log. (DeviceContext in device_model.ts adds the process binding.)
 */
import type { BusDecoder } from '../../src/shm/bus_map.js';
import type { DeviceShm, MachineShm } from '../../src/shm/phys_mem.js';
import type { DmaEngine } from './dma_engine.js';
import type { InvalidationPort } from './invalidation.js';

export interface DeviceCtxCore {
  readonly self: DeviceShm;
  readonly shm: MachineShm;
  readonly bus: BusDecoder;
  readonly dma: DmaEngine;
  readonly inv: InvalidationPort;
  readonly props: Readonly<Record<string, unknown>>;
  /** Records a device error; returns its sequence number (carried in the completion's result). */
  logError(message: string): number;
}
