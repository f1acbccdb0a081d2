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
  const r = new TreeRebuilder(file, parseName);
  for (const { text, ln } of lines) r.line(text, ln);
  r.finish(lines.at(-1)?.ln ?? 1);
  return r.roots;
}

/** Where a token hangs: the bus (or roots list) it joins, and whether its "\-" closes that list. */
interface Place {
  readonly into: Open | null;
  readonly closes: boolean;
}

/** One pass over the lines, in lspci's depth-first order; the stack holds the lists still open. */
class TreeRebuilder {
  readonly roots: LspciRootBus[] = [];
  private readonly stack: Open[] = [];
  /** bdf -> line it was first seen on. */
  private readonly seen = new Map<string, number>();

  constructor(
    private readonly file: string,
    private readonly parseName: (f: LspciTreeFn, tail: string, ln: number) => void,
  ) {}

  /** Refuse the rebuild: the line, why, and how to recapture. */
  private fail(ln: number, why: string): never {
    throw new LspciParseError(this.file, ln, `the indentation of this tree was lost and it cannot be rebuilt unambiguously: line ${ln}: ${why}; ${RECAPTURE}`);
  }

  /** Read one line: its tokens (root bus, function, bridge bracket) left to right. */
  line(text: string, ln: number): void {
    let i = 0;
    /** Bus the next function on this line attaches to (after a root marker or a bridge's bracket). */
    let target: OpenBus | null = null;
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
        this.fail(ln, `unexpected "${rest.slice(0, 24)}"`);
      }
      // No target yet: this is the line's first token, placed by its marker.
      const place = target === null ? this.placeFirst(conn, rest, root, ln) : this.placeAfter(conn, target);
      if (root) {
        target = this.addRoot(root, place, ln);
        i += root[0].length;
        continue;
      }
      const f = this.addFunction(dev!, place, ln);
      i += dev![0].length;
      const br = /^-\[([0-9a-fA-F]{2})(?:-([0-9a-fA-F]{2}))?\]/.exec(text.slice(i));
      if (br) {
        target = this.openBridge(f, place.into as OpenBus, br, ln);
        i += br[0].length;
        continue;
      }
      this.parseName(f, text.slice(i), ln);
      break;
    }
  }

  /**
   * Where the first token of a line hangs: a lone root bus, the opening of
   * the roots list, or the innermost open list (which "\-" closes).
   */
  private placeFirst(conn: string, rest: string, root: RegExpExecArray | null, ln: number): Place {
    if (root && (conn === '-' || conn === '')) return { into: null, closes: false }; // the only root bus
    if (root && conn === '-+-' && this.roots.length === 0 && this.stack.length === 0) {
      this.stack.push(ROOTS);
      return { into: ROOTS, closes: false };
    }
    if (conn.endsWith('+-') || conn.endsWith('\\-')) {
      const into = this.stack.at(-1) ?? this.fail(ln, `"${conn}${rest.slice(0, 8)}" continues a list, but no list is open (was a line above removed?)`);
      return { into, closes: conn.endsWith('\\-') };
    }
    return this.fail(ln, `a line must start with "+-" or "\\-" before ${rest.slice(0, 8)}`);
  }

  /** A token after a root bus or bridge bracket on the same line hangs on that bus; "+" opens its list. */
  private placeAfter(conn: string, target: OpenBus): Place {
    if (conn.includes('+')) this.stack.push(target);
    return { into: target, closes: false };
  }

  /** A root bus: added to the roots; returns the bus its functions attach to. */
  private addRoot(root: RegExpExecArray, { into, closes }: Place, ln: number): OpenBus {
    if (into !== null && into !== ROOTS) this.fail(ln, `root bus [${root[1]}:${root[2]}] inside bus ${into.bus.toString(16)}`);
    const r: LspciRootBus = { domain: parseInt(root[1], 16), bus: parseInt(root[2], 16), functions: [], line: ln };
    this.roots.push(r);
    if (closes) this.stack.pop();
    return { domain: r.domain, bus: r.bus, sub: 0xff, attach: r.functions };
  }

  /** A function ("1c.4"): attached to the bus it hangs on, once per bdf. */
  private addFunction(dev: RegExpExecArray, { into, closes }: Place, ln: number): LspciTreeFn {
    if (into === null || into === ROOTS) this.fail(ln, `function ${dev[0]} outside any bus`);
    const bus = into as OpenBus;
    const f: LspciTreeFn = {
      domain: bus.domain,
      bus: bus.bus,
      dev: parseInt(dev[1], 16),
      fn: parseInt(dev[2], 10),
      bdf: formatBdf(bus.domain, bus.bus, parseInt(dev[1], 16), parseInt(dev[2], 10)),
      children: [],
      line: ln,
    };
    if (this.seen.has(f.bdf)) this.fail(ln, `${f.bdf} would appear twice (first on line ${this.seen.get(f.bdf)})`);
    this.seen.set(f.bdf, ln);
    bus.attach.push(f);
    if (closes) this.stack.pop();
    return f;
  }

  /** A bridge's "-[sec-sub]" bracket: its range must fit below its bus; returns its secondary bus. */
  private openBridge(f: LspciTreeFn, bus: OpenBus, br: RegExpExecArray, ln: number): OpenBus {
    f.secondary = parseInt(br[1], 16);
    f.subordinate = br[2] ? parseInt(br[2], 16) : f.secondary;
    if (f.secondary <= bus.bus || f.subordinate > bus.sub) {
      this.fail(ln, `bridge ${f.bdf} with buses [${br[1]}${br[2] ? '-' + br[2] : ''}] does not fit below bus ${hex2(bus.bus)} (buses ${hex2(bus.bus)}-${hex2(bus.sub)})`);
    }
    return { domain: f.domain, bus: f.secondary, sub: f.subordinate, attach: f.children };
  }

  /** Every list opened must have been closed by a "\-" line. */
  finish(lastLn: number): void {
    if (this.stack.length === 0) return;
    const top = this.stack.at(-1)!;
    this.fail(lastLn, `the list of ${top === ROOTS ? 'root buses' : `bus ${hex2(top.bus)}`} is never closed by a "\\-" line (was a line removed?)`);
  }
}

const hex2 = (n: number): string => n.toString(16).padStart(2, '0');
