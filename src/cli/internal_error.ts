/**
 * An error nobody anticipated (a bug, not bad input): one line naming it
 * and how to see more, not a stack dump; `--debug` prints the stack.
 */
let debug = false;

/** Set by the global --debug flag (src/cli/main.ts). */
export function setDebug(on: boolean): void {
  debug = on;
}

/** The global --debug flag: also prints when each run starts and ends (src/cli/progress.ts). */
export function debugOn(): boolean {
  return debug;
}

export function internalErrorLine(prefix: string, e: unknown): string {
  if (debug) return `${prefix}: internal error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`;
  const name = e instanceof Error ? e.name : typeof e;
  const first = (e instanceof Error ? e.message : String(e)).split('\n')[0];
  const line = first.length > 200 ? first.slice(0, 197) + '...' : first;
  return `${prefix}: internal error (${name}): ${line}\n  (a bug in peervma, not in your input; rerun with --debug for the stack and report it)\n`;
}
