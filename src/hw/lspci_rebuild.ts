/*
 * Rebuilds an `lspci -tv` tree whose indentation was lost (pasted into a
 * forum that strips leading blanks, shifted by an editor) from what is
 * left on each line: the "+-" / "\-" markers and the [bus] / [sec-sub]
 * brackets.
 *
 * Why it works: ls-tree.c show_tree_bus() prints depth-first, so the list
 * a continuation line ("+-" or "\-" first on the line) belongs to is always
 * the innermost list still open; "\-" closes it. A bus opens a list when
 * its first function follows "+-" ("--+-00.0"), and holds one function when
 * it follows "--" ("----00.0"). The columns are redundant with that.
 *
 * When it is ambiguous (lines were removed, e.g. by grep): a continuation
 * with no open list, a list left open at the end, or a bridge whose bus
 * range does not fit inside its parent's. Then the import is refused with
 * the line and how to recapture; nothing is guessed.
 */
import { formatBdf } from './pci_tree.js';
import { LspciParseError, type LspciRootBus, type LspciTreeFn } from './lspci_types.js';

interface OpenBus {
  readonly domain: number;
  readonly bus: number;
  /** Bus range the functions below may use: [bus, subordinate]. */
  readonly sub: number;
  readonly attach: LspciTreeFn[];
}
/** The list of root buses (several root buses: "-+-[0000:00]" ... "\-[0000:80]"). */
const ROOTS = 'roots' as const;
type Open = OpenBus | typeof ROOTS;

const RECAPTURE = 'recapture with `lspci -tvnn > tree.txt` and pass that file unchanged (attach it rather than pasting it)';

export function rebuildTree(lines: readonly { text: string; ln: number }[], file: string, parseName: (f: LspciTreeFn, tail: string, ln: number) => void): LspciRootBus[] {
  const roots: LspciRootBus[] = [];
  const stack: Open[] = [];
  const seen = new Map<string, number>();
  const fail = (ln: number, why: string): never => {
    throw new LspciParseError(file, ln, `the indentation of this tree was lost and it cannot be rebuilt unambiguously: line ${ln}: ${why}; ${RECAPTURE}`);
  };
  for (const { text, ln } of lines) {
    let i = 0;
    /** Bus the next function on this line attaches to (after a root marker or a bridge's bracket). */
    let target: OpenBus | null = null;
    let first = true;
    while (i < text.length) {
      while (i < text.length && (text[i] === ' ' || text[i] === '|')) i++;
      if (i >= text.length) break;
      const c0 = i;
      while (i < text.length && '+-\\'.includes(text[i])) i++;
      const conn = text.slice(c0, i);
      const rest = text.slice(i);
      const root = /^\[([0-9a-fA-F]{4}):([0-9a-fA-F]{2})\]/.exec(rest);
      const dev = root ? null : /^([0-9a-fA-F]{2})\.([0-7])(?=$|\s|-)/.exec(rest);
      if (!root && !dev) {
        if (target && /^-*$/.test(conn) && rest === '') break; // an empty bridge: "-[04]--"
        fail(ln, `unexpected "${rest.slice(0, 24)}"`);
      }
      // Where this token hangs.
      let into: Open | null;
      let closes = false;
      if (first) {
        if (root && (conn === '-' || conn === '')) into = null; // the only root bus
        else if (root && conn === '-+-' && roots.length === 0 && stack.length === 0) {
          stack.push(ROOTS);
          into = ROOTS;
        } else if (conn.endsWith('+-') || conn.endsWith('\\-')) {
          into = stack.at(-1) ?? fail(ln, `"${conn}${rest.slice(0, 8)}" continues a list, but no list is open (was a line above removed?)`);
          closes = conn.endsWith('\\-');
        } else into = fail(ln, `a line must start with "+-" or "\\-" before ${rest.slice(0, 8)}`);
      } else {
        into = target!;
        if (conn.includes('+')) stack.push(target!);
      }
      first = false;
      if (root) {
        if (into !== null && into !== ROOTS) fail(ln, `root bus [${root[1]}:${root[2]}] inside bus ${into.bus.toString(16)}`);
        const r: LspciRootBus = { domain: parseInt(root[1], 16), bus: parseInt(root[2], 16), functions: [], line: ln };
        roots.push(r);
        if (closes) stack.pop();
        target = { domain: r.domain, bus: r.bus, sub: 0xff, attach: r.functions };
        i += root[0].length;
        continue;
      }
      if (into === null || into === ROOTS) fail(ln, `function ${dev![0]} outside any bus`);
      const bus = into as OpenBus;
      const f: LspciTreeFn = {
        domain: bus.domain,
        bus: bus.bus,
        dev: parseInt(dev![1], 16),
        fn: parseInt(dev![2], 10),
        bdf: formatBdf(bus.domain, bus.bus, parseInt(dev![1], 16), parseInt(dev![2], 10)),
        children: [],
        line: ln,
      };
      if (seen.has(f.bdf)) fail(ln, `${f.bdf} would appear twice (first on line ${seen.get(f.bdf)})`);
      seen.set(f.bdf, ln);
      bus.attach.push(f);
      if (closes) stack.pop();
      i += dev![0].length;
      const br = /^-\[([0-9a-fA-F]{2})(?:-([0-9a-fA-F]{2}))?\]/.exec(text.slice(i));
      if (br) {
        f.secondary = parseInt(br[1], 16);
        f.subordinate = br[2] ? parseInt(br[2], 16) : f.secondary;
        if (f.secondary <= bus.bus || f.subordinate > bus.sub) {
          fail(ln, `bridge ${f.bdf} with buses [${br[1]}${br[2] ? '-' + br[2] : ''}] does not fit below bus ${bus.bus.toString(16).padStart(2, '0')} (buses ${bus.bus.toString(16).padStart(2, '0')}-${bus.sub.toString(16).padStart(2, '0')})`);
        }
        target = { domain: f.domain, bus: f.secondary, sub: f.subordinate, attach: f.children };
        i += br[0].length;
        continue;
      }
      parseName(f, text.slice(i), ln);
      break;
    }
  }
  if (stack.length > 0) {
    const top = stack.at(-1)!;
    fail(lines.at(-1)?.ln ?? 1, `the list of ${top === ROOTS ? 'root buses' : `bus ${top.bus.toString(16).padStart(2, '0')}`} is never closed by a "\\-" line (was a line removed?)`);
  }
  return roots;
}
