/**
 * Text width and word wrapping, for every human output that must fit a
 * terminal: the run summaries (src/trace/text_layout.ts builds its blocks
 * on these), `peervma stress`'s report (src/stress/report.ts) and `peervma topo` (src/hw/topo_report.ts, below src/trace).
 */

/** Display width of a string (code points; every character we print is one column wide). */
export function width(s: string): number {
  return [...s].length;
}

/**
 * Splits `text` into lines of at most `w` columns at spaces; a word longer
 * than a line (a long bus address list) is cut. Existing newlines are kept.
 */
export function wrap(text: string, w: number): string[] {
  const out: string[] = [];
  for (const para of text.split('\n')) {
    let line = '';
    for (let word of para.split(/ +/)) {
      while (width(word) > w) {
        if (line) out.push(line);
        line = '';
        const cps = [...word];
        out.push(cps.slice(0, w).join(''));
        word = cps.slice(w).join('');
      }
      if (!line) line = word;
      else if (width(line) + 1 + width(word) <= w) line += ` ${word}`;
      else {
        out.push(line);
        line = word;
      }
    }
    out.push(line);
  }
  return out;
}

/** `text` wrapped to `cols`, every line after the first indented by `indent` spaces (and the first by `first`). */
export function paragraph(text: string, cols: number, first = 0, indent = first): string {
  const lines = wrap(text, cols - Math.max(first, indent));
  return lines.map((l, i) => ' '.repeat(i === 0 ? first : indent) + l).join('\n');
}
