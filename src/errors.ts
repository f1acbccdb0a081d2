/**
 * The one catalogue of peervma errors (piscina's errors.ts, with codes
 * added): every refusal carries an errno name, the object it is about, and
 * a sentence a person can act on.
 */

import type { Errno } from './shm/errno.js';

/** The errno names: declared once, in src/shm/errno.ts (the kernel and the workers share them). */
export type { Errno };

/** Kernel-path refusal: `code` is the errno, `object` names what was refused. */
export class PeerVmaError extends Error {
  constructor(
    readonly code: Errno,
    readonly object: string,
    readonly reason: string,
  ) {
    super(`${code}: ${object}: ${reason}`);
    this.name = 'PeerVmaError';
  }
}

/** A device worker misbehaved: threw, exited, or did not answer in time. */
export class DeviceError extends Error {
  constructor(
    readonly device: string,
    readonly what: 'crashed' | 'exited' | 'timeout' | 'device-error',
    detail: string,
  ) {
    super(`device ${device} ${what === 'device-error' ? 'reported an error' : what}: ${detail}`);
    this.name = 'DeviceError';
  }
}

/** A scenario file is malformed: names the file, the key path, the bad value and what was expected. */
export class ScenarioError extends Error {
  constructor(
    readonly file: string,
    readonly problems: readonly string[],
  ) {
    super(`${file}: invalid scenario\n${problems.map((p) => '  - ' + p).join('\n')}`);
    this.name = 'ScenarioError';
  }
}

/**
 * Input refused before anything started that is not a scenario's content:
 * a file that cannot be read, flags that contradict each other. The
 * message names the path or the flags and says what to do.
 */
export class InputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InputError';
  }
}

/** A scenario asks for more than this machine can hold. */
export class LimitError extends Error {
  constructor(
    readonly resource: string,
    readonly asked: number,
    readonly available: number,
    unit: string,
  ) {
    super(`scenario asks for ${asked} ${unit} of ${resource}, this machine can give ${available} ${unit}`);
    this.name = 'LimitError';
  }
}

/** A data check failed: the run's output differs from the reference. */
export class VerifyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'VerifyError';
  }
}

/** The topology forbids the P2P path a run asked for (and the scenario does not allow falling back). */
export class P2pRefusedError extends Error {
  constructor(
    readonly workload: string,
    readonly reasons: string,
  ) {
    super(`p2p mode refused for ${workload}: the topology does not allow it\n${reasons}\n(set 'fallback: bounce' under workload to run through system RAM instead)`);
    this.name = 'P2pRefusedError';
  }
}
