// topology.generate: a DGX-style fabric built from a fan-out (src/hw/topology_gen.ts),
// validated by the topology schema; the workload's P2P pairs placed on one leaf switch;
// bad generate keys named; the scenario then reads as if it had written the topology.
import t from 'tap';
import { affinityGroups, generateTopology, GenerateSpecSchema } from '../../src/hw/topology_gen.js';
import { TopologySchema } from '../../src/hw/topology_schema.js';
import { parseScenario } from '../../src/scenario/load.js';
import { buildFabric } from '../../src/hw/topology.js';
import { ScenarioError } from '../../src/errors.js';

/** device -> "rc/top/leaf" of a generated spec. */
function where(spec: ReturnType<typeof generateTopology>): Map<string, string> {
  const out = new Map<string, string>();
  const leaf = (rc: string, top: string, sw: { name?: string; ports: { endpoint?: { device?: string } }[] }) => {
    for (const p of sw.ports) out.set(p.endpoint!.device!, `${rc}/${top}/${sw.name}`);
  };
  for (const rc of spec.rootComplexes)
    for (const port of rc.ports) {
      const sw = port.switch!;
      if (sw.name!.startsWith('plx')) for (const l of sw.ports) leaf(rc.name!, sw.name!, l.switch!);
      else leaf(rc.name!, '-', sw);
    }
  return out;
}

t.test('fan-out, root complexes, top switch: the shape asked for, valid for the topology schema', async (t) => {
  const groups = affinityGroups(['a0', 'a1', 'a2', 'a3', 'a4', 'a5', 'a6', 'a7', 'a8'], []);
  const spec = generateTopology(GenerateSpecSchema.parse({ rootComplexes: 2, fanout: 2 }), groups);
  t.ok(TopologySchema.safeParse(spec).success, 'the topology schema accepts it');
  t.same(spec.rootComplexes.map((r) => r.name), ['rc0', 'rc1']);
  const w = where(spec);
  t.equal(w.size, 9, 'every device placed once');
  t.same([...new Set([...w.values()])], ['rc0/plx0/sw0', 'rc0/plx0/sw1', 'rc0/plx0/sw2', 'rc1/plx1/sw3', 'rc1/plx1/sw4'], '5 leaves of 2, split 3 + 2');
  const flat = generateTopology(GenerateSpecSchema.parse({ fanout: 4, topSwitch: false }), groups);
  t.same(flat.rootComplexes[0].ports.map((p) => p.slot), ['01.0', '02.0', '03.0'], 'DGX-1 style: a root port per leaf');
});

t.test('talking devices share a leaf; a group larger than the fan-out spreads over consecutive leaves', async (t) => {
  const devs = ['cam0', 'cam1', 'cam2', 'cc0', 'cc1', 'cc2', 'solo'];
  const groups = affinityGroups(devs, [['cc0', 'cam0'], ['cc1', 'cam1'], ['cc2', 'cam2']]);
  t.same(groups, [['cam0', 'cc0'], ['cam1', 'cc1'], ['cam2', 'cc2'], ['solo']]);
  const w = where(generateTopology(GenerateSpecSchema.parse({ fanout: 3 }), groups));
  for (const i of [0, 1, 2]) t.equal(w.get(`cam${i}`), w.get(`cc${i}`), `cam${i} beside cc${i}`);
  t.not(w.get('cam0'), w.get('cam1'), 'a pair that does not fit the rest of a leaf starts a new one');
  const big = affinityGroups(['acc', 'n0', 'n1', 'n2', 'n3', 'n4'], ['n0', 'n1', 'n2', 'n3', 'n4'].map((n): [string, string] => ['acc', n]));
  t.same([...new Set(where(generateTopology(GenerateSpecSchema.parse({ fanout: 4 }), big)).values())], ['rc0/plx0/sw0', 'rc0/plx0/sw1']);
});

const farm = (generate: string) => `name: g
devices:
  - { name: cam0, kind: camera, memory: 256 KiB }
  - { name: cam1, kind: camera, memory: 256 KiB }
  - { name: cc0, kind: colour-correction, memory: 4 MiB, bar: 1 MiB }
  - { name: cc1, kind: colour-correction, memory: 4 MiB, bar: 1 MiB }
processes: [{ name: v }]
topology: ${generate}
workload: { kind: camera-chain, camera: cam, corrector: cc, output: v, pipelines: 2 }
`;

t.test('a scenario with topology.generate reads as if it had written the topology', async (t) => {
  const s = parseScenario(farm('{ generate: { fanout: 2, rootComplexes: 2 } }'), 'g.yaml');
  t.ok(s.topology && TopologySchema.safeParse(s.topology).success);
  const fabric = buildFabric(s.topology, s.devices.map((d) => d.name), s.seed);
  t.equal(fabric.mapType('cc0', 'cam0').map, 'bus-addr', 'each pipeline under one leaf');
  t.equal(fabric.mapType('cc1', 'cam0').map, 'not-supported', 'across sockets rfc-v1 refuses');
});

t.test('bad generate keys are named; nothing starts', async (t) => {
  const e1 = t.throws(() => parseScenario(farm('{ generate: { fanout: 0, rootComplexes: 3 } }'), 'g.yaml')) as ScenarioError;
  t.ok(e1 instanceof ScenarioError);
  t.match(e1.message, /topology\.generate\.rootComplexes: /);
  t.match(e1.message, /topology\.generate\.fanout: /);
  const e2 = t.throws(() => parseScenario(farm('{ generate: {}, policy: iommu }'), 'g.yaml')) as ScenarioError;
  t.match(e2.message, /topology: unknown key 'policy' beside 'generate'/);
  const e3 = t.throws(() => parseScenario(farm('{ generate: { fanout: 1, rootComplexes: 1, topSwitch: false } }').replace(/devices:\n/, `devices:\n${Array.from({ length: 30 }, (_, i) => `  - { name: x${i}, kind: camera, memory: 256 KiB }\n`).join('')}`), 'g.yaml')) as ScenarioError;
  t.match(e3.message, /topology\.generate: 34 leaf switches of 1 devices need 34 ports per root complex; at most 31/);
});

t.test('peervma topo prints the generated fabric of a shipped scenario', async (t) => {
  const { runTopo } = await import('../../src/cli/topo.js');
  // 200 columns: the lspci -tv drawing (at 100 it is wider than the terminal and prints as an outline, test/cli/topo_width.test.ts).
  const out = runTopo('scenarios/camera-farm.yaml', {}, 200);
  t.match(out, /## PCI tree \(lspci -tv\)\n\n-\+-\[0000:00\]-\+-00\.0  rc0 host bridge \[8086:2020\]/);
  t.match(out, /\\-\[0000:0f\]-\+-00\.0  rc1 host bridge \[8086:2020\]/, 'the second socket');
  t.match(out, /-00\.0-\[05\]----00\.0  cam0\n.*\+-01\.0-\[06\]----00\.0  cc0\n/, 'cam0 and cc0 side by side on one leaf');
  t.match(out, /switch upstream port \(plx0\)/);
});
