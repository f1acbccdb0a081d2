/**
 * Plain-text layout for the human summaries: a terminal width, word
 * wrapping with a hanging indent, label/value blocks and borderless
 * column tables. Everything a summary prints goes through here so that
 * it fits `$COLUMNS` (default 100) — except a table whose columns alone
 * are wider, which is printed as it is rather than cut.
 */

const DEFAULT_COLUMNS = 100;
/** Narrower than this and wrapping stops helping; we lay out for this width instead. */
const MIN_COLUMNS = 60;
/** A label column wider than this is cut to its own line. */
const MAX_LABEL = 40;

/** The width to lay out for: $COLUMNS when it is a sane number, else 100 (a pipe, a file, CI). */
export function terminalColumns(env: NodeJS.ProcessEnv = process.env): number {
  const n = Number(env.COLUMNS);
  return Number.isInteger(n) && n > 0 ? Math.max(MIN_COLUMNS, n) : DEFAULT_COLUMNS;
}

export { width, wrap } from '../common/text_wrap.js';
import { width, wrap } from '../common/text_wrap.js';

/** `text` wrapped to `cols`, every line after the first indented by `indent` spaces (and the first by `first`). */
export function paragraph(text: string, cols: number, first = 0, indent = first): string {
  const lines = wrap(text, cols - Math.max(first, indent));
  return lines.map((l, i) => ' '.repeat(i === 0 ? first : indent) + l).join('\n');
}

/**
 * Label/value rows: labels in a column, values wrapped beside them with a
 * hanging indent.
 *
 *   wall time             180.4 ms
 *   check ok              frames bit-exact against the CPU reference: 2
 *                         of 2 frames
 */
export function kvBlock(rows: readonly (readonly [string, string])[], cols: number): string {
  const lw = Math.min(MAX_LABEL, Math.max(...rows.map(([k]) => width(k))));
  const vw = cols - lw - 2;
  const out: string[] = [];
  for (const [k, v] of rows) {
    const lines = wrap(v, vw);
    if (width(k) > lw) {
      out.push(k);
      for (const l of lines) out.push(' '.repeat(lw + 2) + l);
      continue;
    }
    out.push(`${k.padEnd(lw)}  ${lines[0]}`.trimEnd());
    for (const l of lines.slice(1)) out.push(' '.repeat(lw + 2) + l);
  }
  return out.join('\n');
}

/**
 * A borderless table: a header, a rule, rows; the first column left
 * aligned, the others right aligned (they are figures).
 */
export function table(head: readonly string[], rows: readonly (readonly string[])[]): string {
  const ws = head.map((h, i) => Math.max(width(h), ...rows.map((r) => width(r[i] ?? ''))));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => (i === 0 ? c.padEnd(ws[i]) : c.padStart(ws[i])))
      .join('  ')
      .trimEnd();
  return [line(head), ws.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}
