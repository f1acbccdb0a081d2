/**
 * The free text after a command's options in --help (exit codes, examples):
 * commander wraps the options it lays out, not this text, so each paragraph
 * is wrapped here to the 100 columns every human output fits.
 */
import { width, wrap } from '../common/text_wrap.js';

const HELP_COLUMNS = 100;

/** Paragraphs after a blank line; a line over HELP_COLUMNS is wrapped, the others (indented examples) kept as they are. */
export function helpText(...paragraphs: string[]): string {
  const lines = paragraphs.flatMap((p) => p.split('\n')).flatMap((l) => (width(l) > HELP_COLUMNS ? wrap(l, HELP_COLUMNS) : [l]));
  return `\n${lines.join('\n')}`;
}
