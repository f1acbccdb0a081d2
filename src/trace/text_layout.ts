/**
 * Plain-text layout for the human summaries: a terminal width, word
 * wrapping with a hanging indent, label/value blocks and borderless
 * column tables. Everything a summary prints goes through here so that
 * it fits `$COLUMNS` (default 100); a table whose columns alone are wider
 * is stacked instead (a row's first cell, then its `header value` pairs
 * wrapped under it) rather than cut.
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

export { paragraph, width, wrap } from '../common/text_wrap.js';
import { width, wrap } from '../common/text_wrap.js';


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
 * aligned, the others right aligned (they are figures). Wider than `cols`:
 * stacked (see stacked()).
 */
export function table(head: readonly string[], rows: readonly (readonly string[])[], cols = Infinity): string {
  const ws = head.map((h, i) => Math.max(width(h), ...rows.map((r) => width(r[i] ?? ''))));
  if (ws.reduce((a, w) => a + w + 2, -2) > cols) return stacked(head, rows, cols);
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => (i === 0 ? c.padEnd(ws[i]) : c.padStart(ws[i])))
      .join('  ')
      .trimEnd();
  return [line(head), ws.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

/**
 * A table too wide for `cols`, one block per row:
 *
 *   cam0
 *     commands 12 · DMA ms 3.1 · compute ms 0.0 · RAM read 0 B · ...
 */
function stacked(head: readonly string[], rows: readonly (readonly string[])[], cols: number): string {
  const block = (r: readonly string[]) => [r[0] ?? '', ...packed(head.slice(1).map((h, i) => `${h} ${r[i + 1] ?? ''}`), cols - 2).map((l) => `  ${l}`)];
  return [head[0], '-'.repeat(width(head[0])), ...rows.flatMap(block)].join('\n');
}

/** `items` joined by ' · ' into lines of at most `cols`, never splitting an item (a figure stays with its unit). */
function packed(items: readonly string[], cols: number): string[] {
  const lines: string[] = [];
  for (const it of items) {
    const last = lines.length - 1;
    if (last >= 0 && width(lines[last]) + 3 + width(it) <= cols) lines[last] += ` · ${it}`;
    else lines.push(it);
  }
  return lines;
}
