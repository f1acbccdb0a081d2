/**
 * RFC workload (1), "a NIC drives an NVMe queue, no CPU", as a registered
 * workload: roles, the pair that must talk directly (the NVMe exports, the
 * NIC imports), and the common accounting. With `pairs: N` the N pairs run
 * at once (src/workloads/instances.ts).
 *
 * Counting (src/workloads/workload.ts rules):
 * - payload: IO data bytes (ios x ioBytes);
 * - bounceBytes: every device byte to or from system RAM — in bounce mode
 *   each request's data is staged once in RAM and crosses it twice (NIC ->
 *   RAM -> NVMe for a WRITE, NVMe -> RAM -> NIC for a READ), so
 *   bounceBytes = ramBytes = 2 x payload; in p2p mode 0;
 * - p2pBytes: NIC <-> NVMe bus traffic: the data plus the queue traffic
 *   (64-byte SQEs, 16-byte CQE reads, 4-byte doorbells and MSIs);
 * - hostInterventions: bounce — the kernel's commands, 3 per request (RECV,
 *   NVMe READ/WRITE, XMIT); p2p — kernel commands per request (none) plus
 *   page requests the kernel served during the stream (none after the
 *   NVME_ATTACH prefault); setup (bind, export, ATTACH, the one RUN) is not
 *   counted, and the host wakeups during the stream are printed beside it.
 */
import type { WorkloadDef, Accounting, Check, WorkloadContext } from '../workload.js';
import { NvmeDriver } from '../../drivers/nvme_driver.js';
import { deviceKinds } from '../../devices/device_kinds.js';
import { PAGE_SIZE } from '../../shm/constants.js';
import { importerStats, modeledSeconds, trafficTotals } from '../accounting.js';
import { runNicNvme, type NicNvmeResult } from './run.js';
import type { NicNvmeWorkload } from './schema.js';
import { instanceName, prefixProblems, runInstances, type Instance } from '../instances.js';

/** Pair i's own workload (`nic` -> nic<i>, `nvme` -> nvme<i>; one process for all). */
function pair(w: NicNvmeWorkload, i: number): NicNvmeWorkload {
  return { ...w, nic: instanceName(w.nic, i, w.pairs), nvme: instanceName(w.nvme, i, w.pairs), pairs: 1 };
}

function pairs(w: NicNvmeWorkload): Instance<NicNvmeWorkload>[] {
  return Array.from({ length: w.pairs }, (_, i) => {
    const p = pair(w, i);
    return { label: `${p.nic} -> ${p.nvme}`, w: p };
  });
}

function shadowCheck(r: NicNvmeResult): Check {
  const s = r.shadow;
  return {
    name: 'every READ returns the data last written to its blocks (shadow copy)',
    ok: s.problemCount === 0 && s.reads + s.writes === r.ios,
    detail: s.problemCount === 0 ? `${s.reads} READs verified (${s.readsOfWritten} of previously written blocks), ${s.writes} WRITEs` : `${s.problemCount} of ${r.ios} request(s) wrong:\n  ${s.problems.join('\n  ')}`,
  };
}

export const nicNvmeDef: WorkloadDef<NicNvmeWorkload> = {
  kind: 'nic-nvme-queue',
  doc: 'RFC workload (1): a NIC drives an NVMe queue in the NVMe BAR, no CPU',
  roles: (w) =>
    pairs(w).flatMap(({ w: p }) => [
      { key: 'nic', device: p.nic, kinds: ['nic'] },
      { key: 'nvme', device: p.nvme, kinds: ['nvme'] },
    ]),
  processes: (w) => [{ key: 'process', name: w.process }],
  p2pPairs: (w) => pairs(w).map(({ w: p }): [string, string] => [p.nvme, p.nic]),
  validate: (w, devices) => [...prefixProblems('pairs', w.pairs, { nic: w.nic, nvme: w.nvme }, devices), ...pairs(w).flatMap(({ w: p }) => validatePair(p, devices))],
  progress: { device: (w) => pair(w, 0).nvme, total: (w) => w.ios, unit: 'requests' },
  units: { IOPS: 'IO/s', 'kernel interventions per IO': 'interventions', 'host wakeups during the stream': 'wakeups', 'page requests during the stream': 'requests', 'MSIs to the NIC': 'MSIs' },
  scale: (w, n) => ({ ...w, ios: n }),
  async run(ctx, w): Promise<Accounting> {
    if (w.pairs === 1) return runPair(ctx, w);
    return (await runInstances(ctx, pairs(w), runPair)).merged;
  },
};

/** Sizes one pair's NVMe must hold (the schema cannot see the device). */
function validatePair(w: NicNvmeWorkload, devices: Parameters<NonNullable<WorkloadDef<NicNvmeWorkload>['validate']>>[1]): string[] {
  const nvme = devices.find((d) => d.name === w.nvme && d.kind === 'nvme');
  if (!nvme) return []; // the role check reports it
  const blockBytes = (nvme.props.blockBytes as number | undefined) ?? 4096;
  const problems: string[] = [];
  if (w.ioBytes % blockBytes !== 0) problems.push(`workload.ioBytes: got ${w.ioBytes}; expected whole ${blockBytes}-byte blocks of ${w.nvme}`);
  const ns = NvmeDriver.namespacePages(w.blocks, blockBytes);
  const cmb = NvmeDriver.cmbPages(w.queueEntries, w.queueDepth * w.ioBytes);
  const own = Math.ceil(deviceKinds.nvme.minMemBytes / PAGE_SIZE);
  const have = nvme.memory / PAGE_SIZE - own;
  const need = ns + (w.mode === 'p2p' ? cmb : 0);
  if (need > have) problems.push(`workload.blocks: got ${w.blocks}; ${w.nvme} needs ${need} pages of memory for the namespace${w.mode === 'p2p' ? ' and its CMB queue' : ''}, its devices[].memory gives ${have} (after ${own} of its own)`);
  if (w.mode === 'p2p' && cmb > nvme.bar / PAGE_SIZE) problems.push(`workload.queueEntries: got ${w.queueEntries}; the CMB queue (${w.queueEntries} entries + ${w.queueDepth} x ${w.ioBytes}-byte buffers) takes ${cmb} pages, ${w.nvme}'s BAR window (devices[].bar) has ${nvme.bar / PAGE_SIZE}`);
  return problems;
}

/** One NIC -> NVMe pair, run and accounted. */
async function runPair(ctx: WorkloadContext, w: NicNvmeWorkload): Promise<Accounting> {
  const r = await runNicNvme(ctx, w);
  const [nic, nvme] = r.devices;
  const { ramBytes, p2pBytes } = trafficTotals(r.devices);
  const payloadBytes = r.ios * r.ioBytes;
  const flows =
    ctx.mode === 'p2p'
      ? [
          { id: 'nic->nvme', src: w.nic, dst: w.nvme, bytes: nic.bytesToPeer },
          { id: 'nvme->nic', src: w.nvme, dst: w.nic, bytes: nic.bytesFromPeer + nvme.bytesToPeer },
        ]
      : [
          { id: 'nic->ram', src: w.nic, dst: 'ram', bytes: nic.bytesToRam },
          { id: 'ram->nvme', src: 'ram', dst: w.nvme, bytes: nvme.bytesFromRam },
          { id: 'nvme->ram', src: w.nvme, dst: 'ram', bytes: nvme.bytesToRam },
          { id: 'ram->nic', src: 'ram', dst: w.nic, bytes: nic.bytesFromRam },
        ];
  const hostInterventions = r.hostCommands + r.pageRequests;
  const imp = await importerStats(ctx, [w.nic]);
  const checks: Check[] = [shadowCheck(r)];
  if (ctx.mode === 'p2p') {
    checks.push({ name: 'no kernel involvement per request after setup', ok: hostInterventions === 0, detail: `${r.hostCommands} kernel commands, ${r.pageRequests} page requests, ${r.hostWakeups} host wakeups during ${r.ios} requests` });
  }
  const perIo = (n: number) => Number((n / r.ios).toFixed(3));
  return {
    payloadBytes,
    ramBytes,
    bounceBytes: nic.bytesToRam + nic.bytesFromRam + nvme.bytesToRam + nvme.bytesFromRam,
    p2pBytes,
    hostInterventions,
    invalidations: imp.invalidations,
    refaults: imp.refaults,
    wallMs: r.wallMs,
    modeledSeconds: modeledSeconds(ctx.fabric, flows.filter((f) => f.bytes > 0)),
    devices: r.devices,
    checks,
    extra: {
      requests: `${r.ios} x ${r.ioBytes} bytes (${r.shadow.reads} READ, ${r.shadow.writes} WRITE), queue depth ${w.queueDepth}`,
      IOPS: Math.round(r.ios / (r.wallMs / 1000)),
      'kernel interventions per IO': perIo(hostInterventions),
      'host wakeups during the stream': r.hostWakeups,
      'page requests during the stream': r.pageRequests,
      'NVMe commands from the peer / the host': `${r.nvme.cmbCommands} / ${r.nvme.hostCommands}`,
      'MSIs to the NIC': r.nvme.msis,
    },
  };
}
