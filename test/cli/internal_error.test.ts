// An internal error (a bug, not bad input) is one line naming it plus a hint, never a
// stack dump; --debug asks for the stack.
import t from 'tap';
import { internalErrorLine, setDebug } from '../../src/cli/internal_error.js';
import { buildProgram } from '../../src/cli/main.js';

t.test('one line and the hint; a long or multi-line message is cut', async (t) => {
  const huge = new TypeError('x'.repeat(5000) + '\n' + 'second line\n'.repeat(1000));
  const out = internalErrorLine('peervma', huge);
  t.equal(out.split('\n').length, 3, 'two lines and the final newline');
  t.match(out, /^peervma: internal error \(TypeError\): x{197}\.\.\.\n {2}\(a bug in peervma, not in your input; rerun with --debug for the stack and report it\)\n$/);
});

t.test('--debug prints the stack', async (t) => {
  t.teardown(() => setDebug(false));
  const program = buildProgram();
  program.command('x-boom').action(() => undefined);
  await program.parseAsync(['--debug', 'x-boom'], { from: 'user' });
  t.match(internalErrorLine('peervma', new Error('boom')), /^peervma: internal error: Error: boom\n {4}at /);
});
