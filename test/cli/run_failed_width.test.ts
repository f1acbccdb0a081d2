// A failed run's error fits the terminal ($COLUMNS, default 100): a device's message with the
// kernel's reason for a refused page request runs to 300 characters on one line otherwise.
import t from 'tap';
import { DeviceError, PeerVmaError } from '../../src/errors.js';
import { reportError } from '../../src/cli/main.js';

delete process.env.COLUMNS; // the default width, whatever the shell running the tests has
const va = 0x7f00_0000_0000;
const hex = (n: number) => `0x${n.toString(16)}`;
const device = `cam0: CAPTURE_CHAINED of frame 1: cam0: write of va [${hex(va)}, ${hex(va + 0x4b000)}) failed at va ${hex(va)}: EPERM`;
const kernel = `cam0: page request [${hex(va)}, ${hex(va + 0x10000)}) refused: EPERM: hmm: ${hex(va)} in mm 1 for cam0: write asked on read-only vma[${hex(va)},+300K device] of mm 1`;

function stderrOf(e: unknown): { code: number; err: string } {
  const out: string[] = [];
  const we = process.stderr.write;
  process.stderr.write = ((s: string | Uint8Array) => (out.push(String(s)), true)) as typeof process.stderr.write;
  try {
    return { code: reportError(e), err: out.join('') };
  } finally {
    process.stderr.write = we;
  }
}

for (const e of [new DeviceError('cam0', 'device-error', `${device}; kernel: ${kernel}`), new PeerVmaError('EPERM', 'm0', `${device}; kernel: ${kernel}`)]) {
  t.test(`${e.name}: every line fits 100 columns, nothing lost`, async (t) => {
    const { code, err } = stderrOf(e);
    t.equal(code, 1, 'exit code 1: the run failed');
    const lines = err.trimEnd().split('\n');
    t.ok(lines.length > 2, `wrapped over ${lines.length} lines`);
    t.same(lines.filter((l) => [...l].length > 100), [], 'no line over 100 columns');
    t.equal(lines.map((l) => l.trim()).join(' '), `peervma: run failed: ${e.message}`, 'the words as they were, in order');
  });
}
