// hmm-peer with an accelerator whose memory cannot hold the buffer: the first pass checks the
// whole buffer against the accelerator's free device memory before migrating any chunk, so the
// run fails with an input error naming the key (exit 2), never with a later chunk's ENOMEM
// while earlier chunks' TRANSFORMs are in flight (an unhandled rejection would end the process).
import t from 'tap';
import { readFile, writeFile, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { peervmaIn } from '../cli/in_process.js';

/** hmm-peer.yaml with a 64-page buffer on an accelerator of 64 pages (4 of them the staging area), in four chunks. */
async function tooSmall(workload: Record<string, unknown>): Promise<string> {
  const y = parse(await readFile('scenarios/hmm-peer.yaml', 'utf8'));
  Object.assign(y.devices[0], { memory: '256 KiB', bar: '256 KiB' });
  Object.assign(y.workload, { pages: 64, stagePages: 4, chunkPages: 16 }, workload);
  const f = join(await mkdtemp(join(tmpdir(), 'hmm-enomem-')), 'small-acc.yaml');
  await writeFile(f, stringify(y));
  return f;
}

for (const warmUp of [false, true]) {
  t.test(`accelerator memory too small (warmUp: ${warmUp}): ENOMEM up front, exit 2, the key named`, async (t) => {
    const r = await peervmaIn('run', await tooSmall({ warmUp }), '--mode', 'p2p', '--quiet');
    t.equal(r.code, 2, 'an input error, not a failed run or a crash');
    t.match(r.err, /devices\[0\]\.memory: got 262144; too small for this run of hmm-peer \(acc0 memory: migrating the 64-page buffer to the accelerator's device memory, 60 pages free\)/);
  });
}

t.test('bounce mode migrates nothing: the same memory is enough', async (t) => {
  const r = await peervmaIn('run', await tooSmall({ warmUp: false }), '--mode', 'bounce', '--quiet');
  t.equal(r.code, 0, r.err);
});
