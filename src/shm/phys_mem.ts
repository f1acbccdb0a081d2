/**
 * Physical memory of the emulated machine, as SharedArrayBuffers that main
 * and every device worker map: system RAM, each device's local memory, BAR
 * slot tables, register files and control blocks.
 *
 * Lifetime: created by the main thread when a machine is built
 * (createMachineShm), sent once to every worker inside its configure
 * message, and dropped when the machine is torn down. Sizes never change
 * after creation; only contents do.
 *
 * A `MachineShmDesc` is plain data plus SABs (and shared
 * WebAssembly.Memory objects, which clone to the same memory), so it
 * survives structured clone unchanged; `attachMachineShm` turns it into typed views on either
 * side.
 */
import { BAR2_OFFSET, BAR_SPACE_BASE, BAR_SPACE_STRIDE, PAGE_SIZE } from './constants.js';
import { DeviceCtl, DeviceRegs, DeviceStats, deviceRegByte } from './device_ctl.js';
import { allocTraceRing } from './trace_ring.js';
import { Wasm, type WasmMemory } from '../common/wasm.js';

export type BusRegionKind = 'ram' | 'bar-regs' | 'bar-mem';

/** One decodable window of the bus address space. */
export interface BusRegionDesc {
  readonly kind: BusRegionKind;
  readonly base: number;
  readonly size: number;
  /** Device index that owns the region; -1 for system RAM. */
  readonly owner: number;
}

export interface DeviceShmDesc {
  readonly name: string;
  readonly index: number;
  readonly ctl: SharedArrayBuffer;
  readonly regs: SharedArrayBuffer;
  readonly stats: SharedArrayBuffer;
  /** Local device memory (absent for devices without memory). */
  readonly mem: SharedArrayBuffer | null;
  /**
   * The shared WebAssembly.Memory whose buffer `mem` is, for a kind whose
   * model computes in place in WebAssembly (DeviceMemSpec.wasm); else null.
   */
  readonly memWasm: WasmMemory | null;
  /** Page generation table of `mem`: bumped when a page is freed (its identity ends). */
  readonly memGen: SharedArrayBuffer | null;
  /** BAR2 slot table: slot -> device page, -1 = slot not mapped. */
  readonly barSlots: SharedArrayBuffer | null;
  /**
   * BAR generation of each page of `mem`: bumped when a BAR2 slot that maps
   * the page closes (recycled, or the page freed), so a translation made
   * through the slot no longer passes the checker. Apart from memGen because
   * a slot closing does not end the page: its owner's local translation of it
   * (an own device-private page) stays valid. Null without a BAR2 or memory.
   */
  readonly barGen: SharedArrayBuffer | null;
  /** The device's trace ring (src/shm/trace_ring.ts) when the run is traced. */
  readonly trace: SharedArrayBuffer | null;
}

export interface MachineShmDesc {
  /** One word: the host's interrupt line. Every MSI bumps it after the device's own irq word. */
  readonly hostIrq: SharedArrayBuffer;
  readonly ram: SharedArrayBuffer;
  readonly ramGen: SharedArrayBuffer;
  readonly devices: readonly DeviceShmDesc[];
  /** Sorted by base, non-overlapping. */
  readonly regions: readonly BusRegionDesc[];
}

export interface DeviceMemSpec {
  readonly name: string;
  readonly memBytes: number;
  readonly barBytes: number;
  /** Local memory as a shared WebAssembly.Memory (deviceMemory) when its size allows. */
  readonly wasm?: boolean;
}

/** WebAssembly's page: a Memory is a whole number of them. */
export const WASM_PAGE_BYTES = 64 * 1024;

/**
 * A device's local memory: a plain SharedArrayBuffer, or for `wasm` (the
 * accelerator's and NIC's kernels compute in place: accel_simd.ts) a shared
 * WebAssembly.Memory of exactly memBytes, whose buffer is the
 * SharedArrayBuffer every side maps. A size that is not whole WebAssembly
 * pages stays plain (its model runs its JS kernels). Fixed size: never grown.
 */
function deviceMemory(memBytes: number, wasm: boolean): { mem: SharedArrayBuffer; memWasm: WasmMemory | null } {
  if (!wasm || memBytes % WASM_PAGE_BYTES !== 0) return { mem: new SharedArrayBuffer(memBytes), memWasm: null };
  const pages = memBytes / WASM_PAGE_BYTES;
  const memWasm = new Wasm.Memory({ initial: pages, maximum: pages, shared: true });
  return { mem: memWasm.buffer as SharedArrayBuffer, memWasm };
}

function pagesOf(bytes: number, what: string): number {
  if (bytes % PAGE_SIZE !== 0) throw new RangeError(`${what}: ${bytes} bytes is not a multiple of the ${PAGE_SIZE}-byte page`);
  return bytes / PAGE_SIZE;
}

/** Bus address of a device's BAR0 (registers). */
export function bar0Base(index: number): number {
  return BAR_SPACE_BASE + index * BAR_SPACE_STRIDE;
}

/** Bus address of register word `reg` (a DeviceRegs offset: a doorbell, the MSI mailbox) in a device's BAR0. */
export function bar0Reg(index: number, reg: number): number {
  return bar0Base(index) + deviceRegByte(reg);
}

/** Bus address of a device's BAR2 (memory window). */
export function bar2Base(index: number): number {
  return bar0Base(index) + BAR2_OFFSET;
}

/** `traceRecords` > 0: every device gets a trace ring of that many records. */
export function createMachineShm(ramBytes: number, specs: readonly DeviceMemSpec[], traceRecords = 0): MachineShmDesc {
  const ramPages = pagesOf(ramBytes, 'system RAM');
  if (ramBytes > BAR_SPACE_BASE) throw new RangeError(`system RAM of ${ramBytes} bytes overlaps BAR space at 0x${BAR_SPACE_BASE.toString(16)}`);
  const regions: BusRegionDesc[] = [{ kind: 'ram', base: 0, size: ramBytes, owner: -1 }];
  const devices = specs.map((s, index): DeviceShmDesc => {
    const memPages = pagesOf(s.memBytes, `${s.name} memory`);
    const barPages = pagesOf(s.barBytes, `${s.name} BAR2`);
    if (s.barBytes > BAR_SPACE_STRIDE - BAR2_OFFSET) throw new RangeError(`${s.name}: BAR2 of ${s.barBytes} bytes exceeds the per-device bus window`);
    regions.push({ kind: 'bar-regs', base: bar0Base(index), size: DeviceRegs.kBytes, owner: index });
    if (barPages > 0) regions.push({ kind: 'bar-mem', base: bar2Base(index), size: s.barBytes, owner: index });
    const barSlots = barPages > 0 ? new SharedArrayBuffer(barPages * 4) : null;
    if (barSlots) new Int32Array(barSlots).fill(-1);
    const local = memPages > 0 ? deviceMemory(s.memBytes, s.wasm ?? false) : null;
    return {
      name: s.name,
      index,
      ctl: new SharedArrayBuffer(DeviceCtl.kBytes),
      regs: new SharedArrayBuffer(DeviceRegs.kBytes),
      stats: new SharedArrayBuffer(DeviceStats.kFieldCount * 8),
      mem: local?.mem ?? null,
      memWasm: local?.memWasm ?? null,
      memGen: memPages > 0 ? new SharedArrayBuffer(memPages * 4) : null,
      barSlots,
      barGen: barSlots && memPages > 0 ? new SharedArrayBuffer(memPages * 4) : null,
      trace: traceRecords > 0 ? allocTraceRing(traceRecords) : null,
    };
  });
  return { hostIrq: new SharedArrayBuffer(4), ram: new SharedArrayBuffer(ramBytes), ramGen: new SharedArrayBuffer(ramPages * 4), devices, regions };
}

/** Typed views of one device's shared memory. */
export interface DeviceShm {
  readonly name: string;
  readonly index: number;
  readonly ctl: Int32Array;
  readonly regs: Int32Array;
  readonly stats: Float64Array;
  readonly mem: Uint8Array | null;
  /** DeviceShmDesc.memWasm: `mem` as a WebAssembly.Memory, or null. */
  readonly memWasm: WasmMemory | null;
  readonly memGen: Int32Array | null;
  readonly barSlots: Int32Array | null;
  /** BAR generation of each page of `mem` (DeviceShmDesc.barGen). */
  readonly barGen: Int32Array | null;
}

export interface MachineShm {
  readonly desc: MachineShmDesc;
  readonly hostIrq: Int32Array;
  readonly ram: Uint8Array;
  readonly ramGen: Int32Array;
  readonly devices: readonly DeviceShm[];
}

export function attachMachineShm(desc: MachineShmDesc): MachineShm {
  return {
    desc,
    hostIrq: new Int32Array(desc.hostIrq),
    ram: new Uint8Array(desc.ram),
    ramGen: new Int32Array(desc.ramGen),
    devices: desc.devices.map((d) => ({
      name: d.name,
      index: d.index,
      ctl: new Int32Array(d.ctl),
      regs: new Int32Array(d.regs),
      stats: new Float64Array(d.stats),
      mem: d.mem ? new Uint8Array(d.mem) : null,
      memWasm: d.memWasm,
      memGen: d.memGen ? new Int32Array(d.memGen) : null,
      barSlots: d.barSlots ? new Int32Array(d.barSlots) : null,
      barGen: d.barGen ? new Int32Array(d.barGen) : null,
    })),
  };
}
