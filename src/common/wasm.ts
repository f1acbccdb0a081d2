/**
 * The part of the WebAssembly API the project uses, typed (this project's
 * TypeScript lib has no WebAssembly types): the device models' SIMD kernels
 * (src/devices/models/simd_kernels.ts, accel_simd.ts) and the shared
 * WebAssembly.Memory a device's local memory can be (src/shm/phys_mem.ts).
 */

/** The part of the WebAssembly API the project uses. */
export interface WasmApi {
  readonly Module: new (bytes: Uint8Array) => object;
  readonly Instance: new (module: object, imports?: object) => { readonly exports: unknown };
  readonly Memory: new (desc: { initial: number; maximum: number; shared: boolean }) => WasmMemory;
}

/** A WebAssembly.Memory; a shared one's buffer is a SharedArrayBuffer. */
export interface WasmMemory {
  readonly buffer: ArrayBuffer | SharedArrayBuffer;
}

export const Wasm = (globalThis as unknown as { readonly WebAssembly: WasmApi }).WebAssembly;
