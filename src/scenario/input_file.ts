/**
 * Reads a file the user named (a scenario, an lspci capture): a failure is
 * an InputError naming the path and what went wrong in words, not a bare
 * ENOENT / EISDIR.
 */
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { InputError } from '../errors.js';

const WHY: Readonly<Record<string, string>> = {
  ENOENT: 'no such file',
  EISDIR: 'it is a directory, not a file',
  EACCES: 'permission denied',
  ENOTDIR: 'a part of the path is not a directory',
};

function refusal(path: string, what: string, e: unknown): InputError {
  const code = (e as NodeJS.ErrnoException).code;
  const why = (code && WHY[code]) ?? (e as Error).message;
  return new InputError(`cannot read ${what} ${path}: ${why}${code ? ` (${code})` : ''}`);
}

export async function readInputFile(path: string, what: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (e) {
    throw refusal(path, what, e);
  }
}

export function readInputFileSync(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    throw refusal(path, what, e);
  }
}
