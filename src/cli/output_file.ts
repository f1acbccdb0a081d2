/**
 * Checks, before a run starts, that a file the user asked peervma to write
 * (--trace, --report, bench --json) can be written: a run of seconds or
 * minutes must not end in an ENOENT with its results lost. Nothing is
 * created here; the file is written when the run ends, whole or not at all
 * (src/common/output_file_write.ts).
 */
import { accessSync, constants, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { InputError } from '../errors.js';

const WHY: Readonly<Record<string, string>> = {
  ENOENT: 'its directory does not exist',
  EACCES: 'permission denied',
  ENOTDIR: 'a part of the path is not a directory',
  EROFS: 'read-only file system',
};

/** Throws an InputError naming the flag, the path and why it cannot be written. */
export function assertWritable(path: string, flag: string): void {
  const abs = resolve(path);
  const st = statSync(abs, { throwIfNoEntry: false });
  if (st?.isDirectory()) throw new InputError(`cannot write ${flag} ${path}: it is a directory, not a file (EISDIR)`);
  try {
    // The file is written beside itself and renamed over (writeOutputFile): its directory must be writable.
    accessSync(dirname(abs), constants.W_OK);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? '';
    throw new InputError(`cannot write ${flag} ${path}: ${WHY[code] ?? (e as Error).message}${code ? ` (${code})` : ''}`);
  }
}

/** assertWritable for each flag given a path. */
export function assertOutputs(files: Readonly<Record<string, string | undefined>>): void {
  for (const [flag, path] of Object.entries(files)) if (path !== undefined) assertWritable(path, flag);
}
