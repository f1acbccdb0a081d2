/*
 * Lines that are not lspci output but turn up in real captures pasted into
 * bug reports and forums: the shell prompt and command, the author's marks
 * where they cut the output, pciutils' own warnings, a kernel version line.
 * The parsers skip them and say so (one note per line: never silently);
 * anything else they cannot read is still refused with its line number.
 */

export type NoiseKind = 'prompt' | 'abridged' | 'pcilib' | 'kernel-version';

const NOISE: readonly { kind: NoiseKind; re: RegExp; note: string }[] = [
  // "$ lspci -tvnn", "user@host:~$ sudo lspci -vvv", "[root@srv ~]# lspci -t", "PS C:\> ..."
  { kind: 'prompt', re: /^\s*(?:\[[^\]]*\]\s*)?[\w.-]+@[\w.-]+(?::\S*)?\s*[$#%>](?:\s.*)?$/, note: 'a shell prompt line' },
  { kind: 'prompt', re: /^\s*(?:\[[^\]]*\]\s*)?[$#%>]\s+\S/, note: 'a shell prompt line' },
  { kind: 'prompt', re: /^\s*PS [^>]*>\s/, note: 'a shell prompt line' },
  // "+-...", " |   ....", "[...]", "<snip>", "(cut)": the author cut the output here
  { kind: 'abridged', re: /^[\s|+\\`-]*(?:\.{3,}|…|\[\s*(?:\.{3}|…|snip|cut)\s*\]|<\s*(?:snip|cut)\s*>|\(\s*(?:snip|cut)\s*\))[\s.…]*$/i, note: 'an abridgement marker: devices cut from the capture here are missing' },
  // pciutils warnings: "pcilib: Cannot open /proc/bus/pci", "pcilib: Error reading /sys/bus/pci/devices/.../config: Permission denied"
  { kind: 'pcilib', re: /^\s*pcilib: /, note: 'a pcilib warning (run lspci as root for the full capability lists)' },
  // `uname -a`, `uname -r`, /proc/version
  { kind: 'kernel-version', re: /^\s*(?:Linux \S+ \d+\.\d+\S*\s+#\d+|Linux version \d+\.\d+|\d+\.\d+\.\d+[-+.\w]*\s*$)/, note: 'a kernel version line' },
];

/** What kind of non-lspci line this is, or null when it should be lspci output. */
export function classifyNoise(line: string): { kind: NoiseKind; note: string } | null {
  for (const n of NOISE) if (n.re.test(line)) return { kind: n.kind, note: n.note };
  return null;
}

/** The note a parser records for a skipped line. */
export function noiseNote(file: string, line: number, text: string, note: string): string {
  const shown = text.trim().length > 60 ? text.trim().slice(0, 57) + '...' : text.trim();
  return `${file}:${line}: skipped ${note}: "${shown}"`;
}
