/*
 * What the lspci parsers produce (src/hw/lspci.ts, lspci_rebuild.ts), and
 * their one error: the file, the 1-based line and what was expected.
 */

export class LspciParseError extends Error {
  constructor(
    readonly file: string,
    readonly line: number,
    message: string,
  ) {
    super(`${file}:${line}: ${message}`);
    this.name = 'LspciParseError';
  }
}

export interface LspciTreeFn {
  domain: number;
  bus: number;
  dev: number;
  fn: number;
  bdf: string;
  name?: string;
  id?: string;
  /** Bridges: secondary/subordinate bus. */
  secondary?: number;
  subordinate?: number;
  /** Functions on the secondary bus (bridges only). */
  children: LspciTreeFn[];
  line: number;
}

export interface LspciRootBus {
  domain: number;
  bus: number;
  functions: LspciTreeFn[];
  line: number;
}

