/**
 * How peervma writes a file the user asked for (--trace, --report, bench
 * --json): whole or not at all. The data goes to a temporary file beside
 * the target, which is then renamed over it (rename(2) is atomic within a
 * directory), so a reader, a crash or a signal never sees half a file and
 * a previous file at the path stays as it was until the new one is
 * complete.
 *
 * Once the process is interrupted (src/cli/interrupt.ts calls
 * refuseOutputWrites), every later write throws OutputRefusedError: a run
 * that happens to finish while its devices are being torn down writes
 * nothing, so an interrupted command never leaves a file (the policy in
 * README, "Ctrl-C and kill").
 */
import { renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

/** Thrown by writeOutputFile after refuseOutputWrites: names the file not written. */
export class OutputRefusedError extends Error {
  constructor(
    readonly file: string,
    why: string,
  ) {
    super(`${file} not written: ${why}`);
    this.name = 'OutputRefusedError';
  }
}

let refusal: string | null = null;

/** From now on writeOutputFile writes nothing and throws, saying `why`. */
export function refuseOutputWrites(why: string): void {
  refusal ??= why;
}

/** Writes `data` to `file` through a temporary file renamed into place. */
export function writeOutputFile(file: string, data: string | Uint8Array): void {
  if (refusal !== null) throw new OutputRefusedError(file, refusal);
  const tmp = join(dirname(file), `.${basename(file)}.${process.pid}.tmp`);
  try {
    writeFileSync(tmp, data);
    renameSync(tmp, file);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}
