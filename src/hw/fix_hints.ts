/*
 * How a suggested fix is phrased, by where the topology came from: a
 * scenario is changed by its YAML keys, an lspci capture by `peervma topo`
 * flags (or by recapturing). The verdict code names the fix; this table
 * words it, so a user is never told to edit a file they do not have.
 */

export type InputKind = 'scenario' | 'lspci';

export const fixHints = {
  disableAcsRedir: (k: InputKind, bdfs: readonly string[]) =>
    k === 'lspci' ? `(here: --disable-acs-redir '${bdfs.join(';')}')` : `(scenario: topology.disableAcsRedir: [${bdfs.map((b) => `'${b}'`).join(', ')}])`,
  iommuOff: (k: InputKind, rc: { readonly specPath: string }) => (k === 'lspci' ? `--iommu off` : `${rc.specPath}.iommu: false`),
  whitelist: (k: InputKind, ids: string) =>
    k === 'lspci'
      ? `if ${ids || 'the host bridge'} lacks its id in the capture, state it with --host-bridge BUS=VVVV:DDDD or recapture with \`lspci -tvnn\``
      : `scenario: topology.hostBridgeWhitelist for ${ids || 'the host bridge'}`,
  cpuRoutes: (k: InputKind) => (k === 'lspci' ? '--cpu-routes-p2p' : 'topology.cpuRoutesP2p: true'),
  cpuRoutesSource: (k: InputKind) => (k === 'lspci' ? 'recognised from the root complex id, or --cpu-routes-p2p' : 'topology.cpuRoutesP2p'),
  policyIommu: (k: InputKind) => (k === 'lspci' ? '--policy iommu' : 'topology.policy: iommu'),
};
